#!/usr/bin/env python3
"""Comparison runs: cardbatch against a bare peer, alternating, in one run.

    python3 benches/compare.py generate [--rounds N]
    python3 benches/compare.py import-sqlite [--rounds N] [--rows N]
    python3 benches/compare.py import-postgres [--rounds N] [--rows N]
    python3 benches/compare.py memory [--rows N]
    python3 benches/compare.py sqlite-floor [--rounds N] [--rows N]
    python3 benches/compare.py postgres-floor [--rounds N] [--rows N]

generate: `cardbatch cards generate --count 100000` on a RANDOM_LUHN series
(numbers computed, stored in SQLite with their unique keys, a run row and an
event) against `sqlite3 .import` of 100,000 ready-made numbers into a table
with one unique key. Each round uses fresh databases. Reports the median wall
time of each, the ratio (peer / cardbatch: above 1.0 means cardbatch is
faster), and the peak RSS of each process.

import-sqlite: `cardbatch import cards` of a generated cards file (two
series, LUHN_ALGO and MOD7_ALGO; unique card numbers and external IDs; full
validation, events and rejects) into a fresh SQLite database, the same-sized
file with 1% bad rows of every kind, and `sqlite3 .import` of the clean file
into a plain table with the same two unique keys, alternating.

import-postgres: the same files into PostgreSQL: `cardbatch import cards`
into a fresh database against `psql \\copy` of the clean file into a plain
table with the same two unique keys, alternating. The throwaway cluster is
started by scripts/pg-cluster.sh with its default (durable) settings and a
256 MiB shared_buffers. Peak RSS is the client's (cardbatch or psql); the
server's memory is the same for both and not counted.

memory: the peak RSS of one `cardbatch import cards` of a large file.

sqlite-floor: what SQLite itself needs to store what an import stores, with
no cardbatch code involved: the sqlite3 shell loads the clean file into a
temporary table, then, timed, inserts every row into cardbatch's own `cards`
table (migrations/sqlite) and one `card_created` event per card into
`events`, in one transaction, with cardbatch's pragmas. Alternating with
`sqlite3 .import` as in import-sqlite. No importer that writes these tables
on SQLite can be faster than this floor.

postgres-floor: the same for PostgreSQL: psql loads the clean file into a
temporary table, then, timed, one INSERT ... SELECT into cardbatch's `cards`
(migrations/postgres) and one of the events, in one transaction, on the same
kind of throwaway cluster as import-postgres; alternating with `psql \\copy`.

The release binary is built first; all files go to a temporary directory.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "cardbatch")


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def timed(args, cwd, env=None, stdin=None, stdout=subprocess.DEVNULL):
    """Runs a command; returns (seconds, peak RSS in MiB). Fails loudly on a non-zero exit."""
    start = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(map(str, args))} exited {code}: {stderr}")
    return elapsed, usage.ru_maxrss / 1024.0


def cardbatch_env(url):
    env = dict(os.environ)
    env["DATABASE_URL"] = url
    env.pop("RUST_LOG", None)
    return env


def report(name, ours, peer, our_rss, peer_rss, peer_name):
    ours_median, peer_median = statistics.median(ours), statistics.median(peer)
    print(f"\n{name}")
    print(f"  cardbatch  median {ours_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in ours)})  peak RSS {max(our_rss):.1f} MiB")
    print(f"  {peer_name:<10} median {peer_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in peer)})  peak RSS {max(peer_rss):.1f} MiB")
    print(f"  ratio {peer_name} / cardbatch = {peer_median / ours_median:.2f}")


def compare_generate(rounds):
    count = 100_000
    work = tempfile.mkdtemp(prefix="cardbatch-compare-")
    try:
        # The peer's input: 100,000 numbers cardbatch made in a warm-up run.
        warm = os.path.join(work, "warm")
        os.mkdir(warm)
        env = cardbatch_env(f"sqlite://{warm}/cards.db")
        series = ["series", "create", "--code", "BENCH", "--type", "DIGITAL", "--prefix", "6001", "--length", "16", "--method", "RANDOM_LUHN"]
        subprocess.run([BINARY, *series], cwd=warm, env=env, check=True, stdout=subprocess.DEVNULL)
        generated_csv = os.path.join(work, "generated.csv")
        subprocess.run([BINARY, "cards", "generate", "--series-code", "BENCH", "--count", str(count), "--output", generated_csv],
                       cwd=warm, env=env, check=True, stdout=subprocess.DEVNULL)
        numbers_csv = os.path.join(work, "numbers.txt")
        with open(generated_csv) as source, open(numbers_csv, "w") as target:
            next(source)
            target.writelines(line.split(",", 1)[0] + "\n" for line in source)
        ours, peer, our_rss, peer_rss = [], [], [], []
        for round_number in range(rounds):
            run_dir = os.path.join(work, f"round{round_number}")
            os.mkdir(run_dir)
            env = cardbatch_env(f"sqlite://{run_dir}/cards.db")
            subprocess.run([BINARY, *series], cwd=run_dir, env=env, check=True, stdout=subprocess.DEVNULL)
            seconds, rss = timed([BINARY, "--quiet", "cards", "generate", "--series-code", "BENCH", "--count", str(count),
                                  "--output", os.path.join(run_dir, "out.csv")], run_dir, env)
            ours.append(seconds)
            our_rss.append(rss)
            peer_db = os.path.join(run_dir, "peer.db")
            subprocess.run(["sqlite3", peer_db, "CREATE TABLE cards (card_number TEXT NOT NULL UNIQUE);"],
                           check=True, stdout=subprocess.DEVNULL)
            seconds, rss = timed(["sqlite3", peer_db, ".import " + numbers_csv + " cards"], run_dir)
            peer.append(seconds)
            peer_rss.append(rss)
            shutil.rmtree(run_dir)
        report(f"generate {count} RANDOM_LUHN cards into SQLite vs sqlite3 .import of {count} ready-made numbers",
               ours, peer, our_rss, peer_rss, "sqlite3")
    finally:
        shutil.rmtree(work, ignore_errors=True)


MAKE_CARDS = os.path.join(ROOT, "benches", "make_cards.py")
IMPORT_SETUP = [
    ["org", "set", "CONF_CARD_NUMBER_LENGTH", "10"],
    ["org", "set", "CONF_CARD_NUMBER_PREFIX", "CX"],
    ["series", "create", "--code", "LUHN1", "--type", "PHYSICAL", "--prefix", "6001", "--length", "16", "--method", "LUHN_ALGO"],
    ["series", "create", "--code", "MOD1", "--type", "DIGITAL", "--prefix", "77", "--length", "12", "--method", "MOD7_ALGO"],
]


def fresh_import_database(run_dir, url=None):
    """A new database (SQLite unless `url` is given) with the org and the two series the generated files use."""
    os.makedirs(run_dir)
    env = cardbatch_env(url or f"sqlite://{run_dir}/cards.db")
    for args in IMPORT_SETUP:
        subprocess.run([BINARY, *args], cwd=run_dir, env=env, check=True, stdout=subprocess.DEVNULL)
    return env


def timed_import(work, name, path, url=None):
    run_dir = os.path.join(work, name)
    env = fresh_import_database(run_dir, url)
    result = timed([BINARY, "--quiet", "import", "cards", path, "--reject-report", os.path.join(run_dir, "rejects.csv")], run_dir, env)
    shutil.rmtree(run_dir)
    return result


PEER_TABLE = ("CREATE TABLE cards (card_number TEXT NOT NULL UNIQUE, series_code TEXT, "
              "status_label TEXT, external_id TEXT UNIQUE, customer_id TEXT);")


def compare_imports(work, rows, rounds, database, load_peer, title, peer_name):
    """Generates a clean and a dirty file of `rows` rows in `work`, then, alternating for `rounds`
    rounds, imports each with cardbatch into `database(name)` (a URL, or None for a fresh SQLite
    file) and loads the clean one with `load_peer(round, clean_path)`, which returns (seconds, MiB)."""
    clean, dirty = os.path.join(work, "clean.csv"), os.path.join(work, "dirty.csv")
    subprocess.run([sys.executable, MAKE_CARDS, clean, str(rows)], check=True)
    subprocess.run([sys.executable, MAKE_CARDS, dirty, str(rows), "--dirty"], check=True)
    ours, ours_dirty, peer = [], [], []
    rss, rss_dirty, peer_rss = [], [], []
    for n in range(rounds):
        seconds, peak = timed_import(work, f"clean{n}", clean, database(f"clean{n}"))
        ours.append(seconds)
        rss.append(peak)
        seconds, peak = timed_import(work, f"dirty{n}", dirty, database(f"dirty{n}"))
        ours_dirty.append(seconds)
        rss_dirty.append(peak)
        seconds, peak = load_peer(n, clean)
        peer.append(seconds)
        peer_rss.append(peak)
    report(title, ours, peer, rss, peer_rss, peer_name)
    clean_median, dirty_median = statistics.median(ours), statistics.median(ours_dirty)
    print(f"\n{rows} rows with 1% bad rows of every kind")
    print(f"  cardbatch  median {dirty_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in ours_dirty)})  peak RSS {max(rss_dirty):.1f} MiB")
    print(f"  dirty / clean = {dirty_median / clean_median:.2f}")


def load_with_sqlite_import(n, clean, work):
    """The SQLite peer: `sqlite3 .import` of the clean file into the plain two-key table in a
    fresh database file, deleted after; (seconds, MiB)."""
    peer_db = os.path.join(work, f"peer{n}.db")
    subprocess.run(["sqlite3", peer_db, PEER_TABLE], check=True)
    result = timed(["sqlite3", peer_db, f".import --csv --skip 1 {clean} cards"], work)
    os.remove(peer_db)
    return result


def compare_import_sqlite(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-compare-")
    try:
        compare_imports(work, rows, rounds, lambda name: None,
                        lambda n, clean: load_with_sqlite_import(n, clean, work),
                        f"import cards, {rows} clean rows, SQLite, vs sqlite3 .import of the same file", "sqlite3")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster():
    """Starts a PostgreSQL cluster (durable defaults, 256 MiB shared_buffers) and yields a function
    that creates a fresh database in it and returns its URL; stops and deletes the cluster after."""
    # A directory of its own: under root the server runs as `postgres`, which cannot enter a work directory.
    cluster = tempfile.mkdtemp(prefix="cardbatch-pg-")
    try:
        server = subprocess.run([os.path.join(ROOT, "scripts", "pg-cluster.sh"), "start", cluster,
                                 "-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB"],
                                check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        base = server.rsplit("/", 1)[0]

        def fresh_database(name):
            subprocess.run(["psql", "-q", server, "-c", f"CREATE DATABASE {name}"], check=True)
            return f"{base}/{name}"

        yield fresh_database
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "pg-cluster.sh"), "stop", cluster])
        shutil.rmtree(cluster, ignore_errors=True)


def load_with_psql_copy(url, clean, work):
    """The PostgreSQL peer: `psql \\copy` of the clean file into the plain two-key table; (seconds, MiB)."""
    subprocess.run(["psql", "-q", url, "-c", PEER_TABLE], check=True)
    return timed(["psql", "-q", url, "-c", f"\\copy cards FROM '{clean}' WITH (FORMAT csv, HEADER true)"], work)


def compare_import_postgres(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-compare-pg-")
    try:
        with throwaway_cluster() as fresh_database:
            compare_imports(work, rows, rounds, fresh_database,
                            lambda n, clean: load_with_psql_copy(fresh_database(f"peer{n}"), clean, work),
                            f"import cards, {rows} clean rows, PostgreSQL, vs psql \\copy of the same file",
                            "psql \\copy")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report_floor(title, floor, peer, peer_name):
    floor_median, peer_median = statistics.median(floor), statistics.median(peer)
    print(f"\n{title}")
    print(f"  floor      median {floor_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in floor)})")
    print(f"  {peer_name:<10} median {peer_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in peer)})")
    print(f"  best ratio any importer of these tables can reach: {peer_name} / floor = {peer_median / floor_median:.2f}")


# What an import writes, as each floor script times it: every staged row as a card, and one
# event per card, in one transaction. The placeholders are where the two dialects differ.
FLOOR_WRITES = """BEGIN;
INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, customer_id, run_id, import_record,
  external_id_run_id, created_at)
  SELECT 1, CASE series_code WHEN 'LUHN1' THEN 1 ELSE 2 END, card_number, external_id, status_label, customer_id,
  1, {record}, 1, {created_at} FROM {staged};
INSERT INTO events (org_id, run_id, kind, payload, created_at)
  SELECT org_id, run_id, 'card_created', {json_object}('card_id', id, 'series_id', series_id,
  'card_number', card_number, 'external_id', external_id, 'status_label', status_label,
  'status_reason', status_reason, 'customer_id', customer_id), created_at FROM cards ORDER BY id;
COMMIT;
"""

POSTGRES_FLOOR_SCRIPT = """CREATE TEMPORARY TABLE staged (card_number text, series_code text, status_label text,
  external_id text, customer_id bigint);
\\copy staged FROM '{clean}' WITH (FORMAT csv, HEADER true)
\\timing on
""" + FLOOR_WRITES.format(record="customer_id", created_at="now()", staged="staged", json_object="json_build_object")


def postgres_floor(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-floor-pg-")
    try:
        clean = os.path.join(work, "clean.csv")
        subprocess.run([sys.executable, MAKE_CARDS, clean, str(rows)], check=True)
        schema = os.path.join(ROOT, "migrations", "postgres", "0001_schema.sql")
        floor, peer = [], []
        with throwaway_cluster() as fresh_database:
            for n in range(rounds):
                url = fresh_database(f"floor{n}")
                subprocess.run(["psql", "-q", url, "-f", schema], check=True, stdout=subprocess.DEVNULL)
                out = subprocess.run(["psql", "-q", url], input=POSTGRES_FLOOR_SCRIPT.format(clean=clean), text=True,
                                     check=True, stdout=subprocess.PIPE).stdout
                # One "Time: N ms" line per statement after \timing on.
                floor.append(sum(float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:")) / 1000)
                peer.append(load_with_psql_copy(fresh_database(f"peer{n}"), clean, work)[0])
        report_floor(f"PostgreSQL's own floor for an import's writes ({rows} cards and events, one transaction)",
                     floor, peer, "psql \\copy")
    finally:
        shutil.rmtree(work, ignore_errors=True)


SQLITE_FLOOR_SCRIPT = """PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768;
CREATE TEMP TABLE staged (card_number TEXT, series_code TEXT, status_label TEXT, external_id TEXT, customer_id TEXT);
.import --csv --skip 1 {clean} staged
.timer on
""" + FLOOR_WRITES.format(record="rowid", created_at="'2026-01-01T00:00:00.000Z'", staged="temp.staged",
                          json_object="json_object")


def sqlite_floor(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-floor-")
    try:
        clean = os.path.join(work, "clean.csv")
        subprocess.run([sys.executable, MAKE_CARDS, clean, str(rows)], check=True)
        with open(os.path.join(ROOT, "migrations", "sqlite", "0001_schema.sql")) as f:
            schema = f.read()
        floor, peer = [], []
        for n in range(rounds):
            db = os.path.join(work, f"floor{n}.db")
            subprocess.run(["sqlite3", db], input=schema, text=True, check=True)
            out = subprocess.run(["sqlite3", db], input=SQLITE_FLOOR_SCRIPT.format(clean=clean), text=True, check=True,
                                 stdout=subprocess.PIPE).stdout
            # One "Run Time: real S ..." line per statement after .timer on.
            floor.append(sum(float(line.split()[3]) for line in out.splitlines() if line.startswith("Run Time:")))
            for path in [db, db + "-wal", db + "-shm"]:
                if os.path.exists(path):
                    os.remove(path)
            peer.append(load_with_sqlite_import(n, clean, work)[0])
        report_floor(f"SQLite's own floor for an import's writes ({rows} cards and events, one transaction)",
                     floor, peer, "sqlite3")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_memory(rows):
    work = tempfile.mkdtemp(prefix="cardbatch-memory-")
    try:
        path = os.path.join(work, "cards.csv")
        subprocess.run([sys.executable, MAKE_CARDS, path, str(rows), "--dirty"], check=True)
        seconds, peak = timed_import(work, "run", path)
        print(f"\nimport cards of {rows} rows (1% bad): {seconds:.1f} s, peak RSS {peak:.1f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comparison", choices=["generate", "import-sqlite", "import-postgres", "memory", "sqlite-floor",
                                                      "postgres-floor"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    build()
    if args.comparison == "generate":
        compare_generate(args.rounds or 7)
    elif args.comparison == "import-sqlite":
        compare_import_sqlite(args.rounds or 3, args.rows or 1_000_000)
    elif args.comparison == "import-postgres":
        compare_import_postgres(args.rounds or 3, args.rows or 1_000_000)
    elif args.comparison == "sqlite-floor":
        sqlite_floor(args.rounds or 3, args.rows or 1_000_000)
    elif args.comparison == "postgres-floor":
        postgres_floor(args.rounds or 3, args.rows or 1_000_000)
    else:
        measure_memory(args.rows or 3_000_000)


if __name__ == "__main__":
    main()
