#!/usr/bin/env python3
"""Writes cards CSVs for the import benchmarks (nothing is committed; files go where you say).

    python3 benches/make_cards.py OUT.csv ROWS [--dirty] [--preload PRELOAD.csv --preload-rows N]

Two series: LUHN1 (prefix 6001, length 16, LUHN_ALGO) and MOD1 (prefix 77,
length 12, MOD7_ALGO), alternating; card numbers and external IDs are unique.

--preload also writes PRELOAD.csv: N other cards, which the comparison
script imports before the timed run, as the cards a database already holds
when a nightly drop arrives (the clean and the dirty run start from it alike).

With --dirty, 1% of the rows are bad, one kind after another, spread evenly
through the whole file, as in a real drop:
  - field faults: missing card number, too long, a bad character, wrong
    length, wrong prefix, wrong check digit, unknown series, an external ID
    of the wrong length, an unknown status label;
  - duplicates in the file: of the row before, and of a row ~25,000 rows
    back (an earlier batch);
  - duplicates in the database: a card number, and an external ID, of a
    preloaded card (these need --preload).
"""

import argparse
import random


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


HEADER = "card_number,series_code,status_label,external_id,customer_id\n"


def cards(numbers_luhn, numbers_mod7, count, first_external, first_customer):
    """(card, series, external ID, customer) for `count` cards, alternating series."""
    for i in range(count):
        if i % 2 == 0:
            card, code = luhn_card(numbers_luhn[i // 2]), "LUHN1"
        else:
            card, code = mod7_card(numbers_mod7[i // 2]), "MOD1"
        yield card, code, "CX%08d" % (first_external + i), first_customer + i


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("rows", type=int)
    parser.add_argument("--dirty", action="store_true")
    parser.add_argument("--preload")
    parser.add_argument("--preload-rows", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(42)
    total = args.rows + (args.preload_rows if args.preload else 0)
    luhn_numbers = rng.sample(range(10**11), total // 2 + 2)
    mod7_numbers = rng.sample(range(10**9), total // 2 + 2)
    # The main file's cards take the first numbers; preloaded cards the rest.
    main_luhn, main_mod7 = luhn_numbers[: args.rows // 2 + 1], mod7_numbers[: args.rows // 2 + 1]
    preloaded = []
    if args.preload:
        pre_luhn, pre_mod7 = luhn_numbers[args.rows // 2 + 1 :], mod7_numbers[args.rows // 2 + 1 :]
        preloaded = list(cards(pre_luhn, pre_mod7, args.preload_rows, 90_000_000, 5_000_000))
        with open(args.preload, "w") as f:
            f.write(HEADER)
            for card, code, ext, customer in preloaded:
                f.write(f"{card},{code},NOT_ISSUED,{ext},{customer}\n")

    def bad_rows(card, code, ext, i, written):
        """The bad row that replaces row i, one kind after another."""
        kinds = [
            lambda: ("", code, ext),                                   # MISSING_FIELD
            lambda: (card + "X" * 140, code, ext),                     # FIELD_TOO_LONG
            lambda: (card[:5] + "-" + card[6:], code, ext),            # INVALID_CHARACTERS
            lambda: (card[:-1], code, ext),                            # LENGTH_MISMATCH
            lambda: ("9" + card[1:], code, ext),                       # PREFIX_SUFFIX_MISMATCH
            lambda: (card[:-1] + str((int(card[-1]) + 1) % 10), code, ext),  # CHECKSUM_INVALID
            lambda: (card, "NOPE", ext),                               # SERIES_NOT_FOUND
            lambda: (card, code, ext[:-1]),                            # LENGTH_MISMATCH (external ID)
            lambda: written[-1],                                       # DUPLICATE_IN_FILE: the row before
            lambda: written[-25_037] if len(written) > 25_037 else written[0],  # DUPLICATE_IN_FILE: an earlier batch
            lambda: (card, code, ext, "SHINY"),                        # STATUS_LABEL_INVALID
        ]
        if preloaded:
            old = preloaded[(i * 7919) % len(preloaded)]
            kinds += [
                lambda: (old[0], old[1], ext),                         # DUPLICATE_IN_DATABASE: card number
                lambda: (card, code, old[2]),                          # DUPLICATE_IN_DATABASE: external ID
            ]
        return kinds[(i // 100) % len(kinds)]()

    written = []
    with open(args.out, "w") as f:
        f.write(HEADER)
        for i, (card, code, ext, customer) in enumerate(cards(main_luhn, main_mod7, args.rows, 0, 1_000_000)):
            row = (card, code, ext)
            if args.dirty and i % 100 == 50:
                row = bad_rows(card, code, ext, i, written)
            status = row[3] if len(row) > 3 else "NOT_ISSUED"
            f.write(f"{row[0]},{row[1]},{status},{row[2]},{customer}\n")
            written.append((card, code, ext))


if __name__ == "__main__":
    main()
