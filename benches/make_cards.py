#!/usr/bin/env python3
"""Writes a cards CSV for the import benchmarks (nothing is committed; files go where you say).

    python3 benches/make_cards.py OUT.csv ROWS [--dirty]

Two series: LUHN1 (prefix 6001, length 16, LUHN_ALGO) and MOD1 (prefix 77,
length 12, MOD7_ALGO), alternating; card numbers and external IDs are unique.
With --dirty, 1% of the rows are bad, spread over every kind of fault.
"""

import random
import sys


def luhn_digit(payload):
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_card(n):
    body = "%011d" % n
    return "6001" + body + luhn_digit(body)


def mod7_card(n):
    body = "%09d" % n
    return "77" + body + str(n % 7)


BAD_KINDS = [
    lambda card, ext, code: ("", code, ext),                                   # MISSING_FIELD
    lambda card, ext, code: (card + "X" * 140, code, ext),                     # FIELD_TOO_LONG
    lambda card, ext, code: (card[:5] + "-" + card[6:], code, ext),            # INVALID_CHARACTERS
    lambda card, ext, code: (card[:-1], code, ext),                            # LENGTH_MISMATCH
    lambda card, ext, code: ("9" + card[1:], code, ext),                       # PREFIX_SUFFIX_MISMATCH
    lambda card, ext, code: (card[:-1] + str((int(card[-1]) + 1) % 10), code, ext),  # CHECKSUM_INVALID
    lambda card, ext, code: (card, "NOPE", ext),                               # SERIES_NOT_FOUND
    lambda card, ext, code: (card, code, ext[:-1]),                            # LENGTH_MISMATCH (external ID)
    lambda card, ext, code: None,                                              # DUPLICATE_IN_FILE (repeat previous)
    lambda card, ext, code: (card, code, ext, "SHINY"),                        # STATUS_LABEL_INVALID
]


def main():
    out, rows = sys.argv[1], int(sys.argv[2])
    dirty = "--dirty" in sys.argv
    rng = random.Random(42)
    luhn_numbers = rng.sample(range(10**11), rows // 2 + 1)
    mod7_numbers = rng.sample(range(10**9), rows // 2 + 1)
    previous = None
    with open(out, "w") as f:
        f.write("card_number,series_code,status_label,external_id,customer_id\n")
        for i in range(rows):
            if i % 2 == 0:
                card, code = luhn_card(luhn_numbers[i // 2]), "LUHN1"
            else:
                card, code = mod7_card(mod7_numbers[i // 2]), "MOD1"
            ext = "CX%08d" % i
            row = (card, code, ext)
            if dirty and i % 100 == 50:
                bad = BAD_KINDS[(i // 100) % len(BAD_KINDS)](card, ext, code)
                row = previous if bad is None else bad
            status = row[3] if len(row) > 3 else "NOT_ISSUED"
            f.write(f"{row[0]},{row[1]},{status},{row[2]},{1000000 + i}\n")
            previous = (card, code, ext)


if __name__ == "__main__":
    main()
