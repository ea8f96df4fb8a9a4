#!/usr/bin/env python3
"""Comparison runs: cardbatch against bare peers, alternating, in one run.

    python3 benches/compare.py generate [--rounds N]
    python3 benches/compare.py import-sqlite [--rounds N] [--rows N]
    python3 benches/compare.py import-postgres [--rounds N] [--rows N] [--fsync on|off]
    python3 benches/compare.py import-dialect [--rounds N] [--rows N]
    python3 benches/compare.py import-redelivered [--rounds N] [--rows N]
    python3 benches/compare.py import-citus [--rounds N] [--rows N] [--fsync on|off]
    python3 benches/compare.py memory [--rows N]
    python3 benches/compare.py sqlite-floor [--rounds N] [--rows N]
    python3 benches/compare.py postgres-floor [--rounds N] [--rows N] [--fsync on|off]

Every import comparison uses files that look like a real drop
(benches/make_cards.py): a clean file, a file with 1% bad rows of every kind
spread through it (duplicates of earlier batches and of stored cards
included), and 100,000 cards loaded into every database before the timed run
(untimed), the peers' tables included. Medians over the rounds; ratios are
peer / cardbatch (above 1.0: cardbatch is faster); peak RSS of each process.

generate: `cardbatch cards generate --count 100000` on a RANDOM_LUHN series
against `sqlite3 .import` of 100,000 ready-made numbers into a one-key table.

import-sqlite: `cardbatch import cards` of the clean and the dirty file into
SQLite, against `sqlite3 .import` of the clean file into a plain table with
the same two unique keys.

import-postgres: the same into PostgreSQL, against `psql \\copy` of the clean
file into that plain table and pgloader (`apt-get install pgloader`) loading
it into the same kind of table, on a throwaway cluster (scripts/pg-cluster.sh,
256 MiB shared_buffers) that is durable (fsync on, the default) or not
(`--fsync off`). Peak RSS is the client's.

import-dialect: the dirty file as a European Excel export writes it
(Windows-1252, `;`, CR LF, its own accented headers, mapped with --column and
the delimiter detected) against the same records as UTF-8 with cardbatch's
headers, both into SQLite, alternating: what decoding and mapping cost.

import-redelivered: a cumulative nightly file: yesterday's half of the dirty
file (imported untimed the night before) followed by today's half, against
importing today's half alone onto the same database, both into SQLite,
alternating: what the unchanged records cost.

import-citus: the dirty file imported into one org on a three-node Citus
cluster on loopback (scripts/citus-cluster.sh, a database made by `cardbatch
db distribute`) against the same on plain PostgreSQL (scripts/pg-cluster.sh),
same settings, alternating; then two orgs' files imported at once on the
cluster against the same two one after the other. Needs the citus extension.

memory: the peak RSS of one `cardbatch import cards` of a large dirty file.

sqlite-floor / postgres-floor: what the database itself needs to store an
import's rows, with no cardbatch code: the clean file is loaded into a
temporary table (untimed), then, timed, the rows go into cardbatch's own
tables in batches of 10,000 in one transaction, three ways: the cards only;
the cards and one event row per batch (the light outbox); the cards and one
JSON event per card (the outbox before issue 12). postgres-floor adds a
fourth: the cards, exactly as cardbatch writes them, by one `\\copy` straight
into `cards` (the way cardbatch writes them, in one statement rather than
one per batch), and a fifth: the same rows in two halves, `\\copy`d at once on
two connections (the floor of `--connections 2`, timed until both end).
Against `sqlite3 .import` / `psql \\copy` as above. No importer of these
tables writing on one connection beats the one-connection floors.

import-postgres also imports the clean file with `--connections 1`, to show
what the second connection gives in the same run.

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
MAKE_CARDS = os.path.join(ROOT, "benches", "make_cards.py")
PRELOAD_ROWS = 100_000
BATCH = 10_000


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)


def timed(args, cwd, env=None, stdin=None, stdout=subprocess.DEVNULL, ok=(0,)):
    """Runs a command; returns (seconds, peak RSS in MiB). Fails loudly on an exit code not in `ok`."""
    start = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        sys.exit(f"{' '.join(map(str, args))} exited {code}: {stderr}")
    return elapsed, usage.ru_maxrss / 1024.0


def cardbatch_env(url):
    env = dict(os.environ)
    env["DATABASE_URL"] = url
    env.pop("RUST_LOG", None)
    return env


def runs(values):
    return ", ".join(f"{v:.3f}" for v in values)


def report(name, results, peers):
    """`results` and `peers`: {name: ([seconds], [MiB])}; prints medians and ratios against cardbatch's first result."""
    print(f"\n{name}")
    ours = statistics.median(next(iter(results.values()))[0])
    for label, (seconds, rss) in list(results.items()) + list(peers.items()):
        print(f"  {label:<22} median {statistics.median(seconds):7.3f} s  (runs: {runs(seconds)})  peak RSS {max(rss):.1f} MiB")
    for label, (seconds, _) in peers.items():
        print(f"  ratio {label} / cardbatch = {statistics.median(seconds) / ours:.2f}")
    labels = list(results)
    for label in labels[1:]:
        print(f"  {label} / {labels[0]} = {statistics.median(results[label][0]) / ours:.2f}")


def compare_generate(rounds):
    count = 100_000
    work = tempfile.mkdtemp(prefix="cardbatch-compare-")
    try:
        # The peer's input: 100,000 numbers cardbatch made in a warm-up run.
        warm = os.path.join(work, "warm")
        os.mkdir(warm)
        env = cardbatch_env(f"sqlite://{warm}/cards.db")
        series = ["series", "create", "--code", "BENCH", "--type", "DIGITAL", "--prefix", "6001", "--length", "16",
                  "--method", "RANDOM_LUHN"]
        subprocess.run([BINARY, *series], cwd=warm, env=env, check=True, stdout=subprocess.DEVNULL)
        generated_csv = os.path.join(work, "generated.csv")
        subprocess.run([BINARY, "cards", "generate", "--series-code", "BENCH", "--count", str(count), "--output",
                        generated_csv], cwd=warm, env=env, check=True, stdout=subprocess.DEVNULL)
        numbers_csv = os.path.join(work, "numbers.txt")
        with open(generated_csv) as source, open(numbers_csv, "w") as target:
            next(source)
            target.writelines(line.split(",", 1)[0] + "\n" for line in source)
        ours, peer = ([], []), ([], [])
        for round_number in range(rounds):
            run_dir = os.path.join(work, f"round{round_number}")
            os.mkdir(run_dir)
            env = cardbatch_env(f"sqlite://{run_dir}/cards.db")
            subprocess.run([BINARY, *series], cwd=run_dir, env=env, check=True, stdout=subprocess.DEVNULL)
            seconds, rss = timed([BINARY, "--quiet", "cards", "generate", "--series-code", "BENCH", "--count",
                                  str(count), "--output", os.path.join(run_dir, "out.csv")], run_dir, env)
            ours[0].append(seconds)
            ours[1].append(rss)
            peer_db = os.path.join(run_dir, "peer.db")
            subprocess.run(["sqlite3", peer_db, "CREATE TABLE cards (card_number TEXT NOT NULL UNIQUE);"],
                           check=True, stdout=subprocess.DEVNULL)
            seconds, rss = timed(["sqlite3", peer_db, ".import " + numbers_csv + " cards"], run_dir)
            peer[0].append(seconds)
            peer[1].append(rss)
            shutil.rmtree(run_dir)
        report(f"generate {count} RANDOM_LUHN cards into SQLite vs sqlite3 .import of {count} ready-made numbers",
               {"cardbatch": ours}, {"sqlite3 .import": peer})
    finally:
        shutil.rmtree(work, ignore_errors=True)


IMPORT_SETUP = [
    ["org", "set", "CONF_CARD_NUMBER_LENGTH", "10"],
    ["org", "set", "CONF_CARD_NUMBER_PREFIX", "CX"],
    ["series", "create", "--code", "LUHN1", "--type", "PHYSICAL", "--prefix", "6001", "--length", "16", "--method",
     "LUHN_ALGO"],
    ["series", "create", "--code", "MOD1", "--type", "DIGITAL", "--prefix", "77", "--length", "12", "--method",
     "MOD7_ALGO"],
]


def make_files(work, rows):
    """The clean file, the dirty file and the cards stored before either is imported."""
    clean, dirty, preload = (os.path.join(work, name) for name in ("clean.csv", "dirty.csv", "preload.csv"))
    common = ["--preload", preload, "--preload-rows", str(PRELOAD_ROWS)]
    subprocess.run([sys.executable, MAKE_CARDS, clean, str(rows), *common], check=True)
    subprocess.run([sys.executable, MAKE_CARDS, dirty, str(rows), "--dirty", *common], check=True)
    return clean, dirty, preload


def timed_import(work, name, path, preload, url=None, options=(), earlier=()):
    """A fresh database (SQLite unless `url` is given) with the org, the series, the preloaded cards
    and the files `earlier` imported (untimed); then the timed import of `path` with `options`.
    Returns (seconds, MiB)."""
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir)
    env = cardbatch_env(url or f"sqlite://{run_dir}/cards.db")
    for args in IMPORT_SETUP:
        subprocess.run([BINARY, *args], cwd=run_dir, env=env, check=True, stdout=subprocess.DEVNULL)
    # An import exits 4 when it completed with rejects (the dirty file).
    for i, before in enumerate([preload, *earlier]):
        timed([BINARY, "--quiet", "import", "cards", before, "--reject-report",
               os.path.join(run_dir, f"earlier{i}.rejects.csv")], run_dir, env, ok=(0, 4))
    result = timed([BINARY, "--quiet", "import", "cards", path, "--reject-report",
                    os.path.join(run_dir, "rejects.csv"), *options], run_dir, env, ok=(0, 4))
    shutil.rmtree(run_dir)
    return result


PEER_TABLE = ("CREATE TABLE cards (card_number TEXT NOT NULL UNIQUE, series_code TEXT, "
              "status_label TEXT, external_id TEXT UNIQUE, customer_id TEXT);")


def compare_imports(work, rows, rounds, database, peers, title, one_connection=False):
    """Imports the clean and the dirty file with cardbatch into `database(name)` (a URL, or None for a
    fresh SQLite file) and loads the clean one with each peer (`peers`: {name: load(round, clean,
    preload) -> (seconds, MiB)}), alternating for `rounds` rounds. With `one_connection`, the clean
    file also with `--connections 1` (PostgreSQL: what the second connection gives)."""
    clean, dirty, preload = make_files(work, rows)
    variants = [("cardbatch clean", "clean", clean, ()), ("cardbatch dirty", "dirty", dirty, ())]
    if one_connection:
        variants.append(("cardbatch clean 1 conn", "oneconn", clean, ("--connections", "1")))
    results = {label: ([], []) for label, *_ in variants}
    peer_results = {name: ([], []) for name in peers}
    for n in range(rounds):
        for label, short, path, options in variants:
            name = f"{short}{n}"
            seconds, peak = timed_import(work, name, path, preload, database(name), options)
            results[label][0].append(seconds)
            results[label][1].append(peak)
        for name, load in peers.items():
            seconds, peak = load(n, clean, preload)
            peer_results[name][0].append(seconds)
            peer_results[name][1].append(peak)
    report(title, results, peer_results)


def load_with_sqlite_import(n, clean, preload, work):
    """The SQLite peer: `sqlite3 .import` of the clean file into the plain two-key table of a fresh
    database holding the preloaded cards; (seconds, MiB)."""
    peer_db = os.path.join(work, f"peer{n}.db")
    subprocess.run(["sqlite3", peer_db, PEER_TABLE], check=True)
    subprocess.run(["sqlite3", peer_db, f".import --csv --skip 1 {preload} cards"], check=True)
    result = timed(["sqlite3", peer_db, f".import --csv --skip 1 {clean} cards"], work)
    os.remove(peer_db)
    return result


def compare_import_sqlite(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-compare-")
    try:
        compare_imports(work, rows, rounds, lambda name: None,
                        {"sqlite3 .import": lambda n, clean, preload: load_with_sqlite_import(n, clean, preload, work)},
                        f"import cards, {rows} rows, SQLite, vs sqlite3 .import of the clean file")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster(fsync=True):
    """Starts a PostgreSQL cluster (256 MiB shared_buffers; durable unless `fsync` is false) and
    yields a function that creates a fresh database in it and returns its URL; stops and deletes it after."""
    # A directory of its own: under root the server runs as `postgres`, which cannot enter a work directory.
    cluster = tempfile.mkdtemp(prefix="cardbatch-pg-")
    settings = ["-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB"]
    if not fsync:
        settings += ["-c", "fsync=off"]
    try:
        server = subprocess.run([os.path.join(ROOT, "scripts", "pg-cluster.sh"), "start", cluster, *settings],
                                check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        base = server.rsplit("/", 1)[0]

        def fresh_database(name):
            subprocess.run(["psql", "-q", server, "-c", f"CREATE DATABASE {name}"], check=True)
            return f"{base}/{name}"

        yield fresh_database
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "pg-cluster.sh"), "stop", cluster])
        shutil.rmtree(cluster, ignore_errors=True)


@contextlib.contextmanager
def throwaway_citus_cluster(fsync=True):
    """Starts a Citus coordinator and two workers (the settings of `throwaway_cluster`) and yields a
    function that makes a fresh database on every node, distributed by `cardbatch db distribute`."""
    script = os.path.join(ROOT, "scripts", "citus-cluster.sh")
    if subprocess.run([script, "available"]).returncode != 0:
        sys.exit("the citus extension is not installed (see the README, \"Citus\")")
    cluster = tempfile.mkdtemp(prefix="cardbatch-citus-")
    settings = ["-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB"]
    if not fsync:
        settings += ["-c", "fsync=off"]
    try:
        nodes = subprocess.run([script, "start", cluster, *settings], check=True, stdout=subprocess.PIPE,
                               text=True).stdout.split()

        def fresh_database(name):
            urls = [f"{node.rsplit('/', 1)[0]}/{name}" for node in nodes]
            for node, url in zip(nodes, urls):
                subprocess.run(["psql", "-q", node, "-c", f"CREATE DATABASE {name}"], check=True,
                               stderr=subprocess.DEVNULL)
                subprocess.run(["psql", "-q", url, "-c", "CREATE EXTENSION citus"], check=True)
            port = lambda url: url.rsplit(":", 1)[1].split("/")[0]
            calls = [f"SELECT citus_set_coordinator_host('127.0.0.1', {port(urls[0])})"]
            calls += [f"SELECT citus_add_node('127.0.0.1', {port(url)})" for url in urls[1:]]
            for call in calls:
                subprocess.run(["psql", "-q", urls[0], "-c", call], check=True, stdout=subprocess.DEVNULL)
            subprocess.run([BINARY, "--quiet", "db", "distribute"], env=cardbatch_env(urls[0]), check=True)
            return urls[0]

        yield fresh_database
    finally:
        subprocess.run([script, "stop", cluster])
        shutil.rmtree(cluster, ignore_errors=True)


def compare_import_citus(rounds, rows, fsync):
    work = tempfile.mkdtemp(prefix="cardbatch-citus-")
    try:
        _, dirty, preload = make_files(work, rows)
        # The second org imports the same file: the same numbers in another org are other cards.
        with throwaway_cluster(fsync) as plain, throwaway_citus_cluster(fsync) as citus:
            one = {"cardbatch plain PostgreSQL": ([], []), "cardbatch Citus (3 nodes)": ([], [])}
            two = {"two orgs one after the other": ([], []), "two orgs at once": ([], [])}
            for n in range(rounds):
                for label, short, fresh in [("cardbatch plain PostgreSQL", "plain", plain),
                                            ("cardbatch Citus (3 nodes)", "citus", citus)]:
                    seconds, peak = timed_import(work, f"{short}{n}", dirty, preload, url=fresh(f"one_{short}{n}"))
                    one[label][0].append(seconds)
                    one[label][1].append(peak)
                for label, at_once in [("two orgs one after the other", False), ("two orgs at once", True)]:
                    url = citus(f"two_{'once' if at_once else 'after'}{n}")
                    seconds = import_two_orgs(work, f"two{n}{at_once}", url, dirty, preload, at_once)
                    two[label][0].append(seconds)
                    two[label][1].append(0.0)
            report(f"import cards, {rows} rows (1% bad) into one org, Citus (coordinator + 2 workers on loopback) vs "
                   f"plain PostgreSQL (fsync {'on' if fsync else 'off'})", one, {})
            report(f"import cards, two orgs of {rows} rows each, on the Citus cluster", two, {})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def import_two_orgs(work, name, url, path, preload, at_once):
    """Orgs 1 and 2 set up with the series and the preloaded cards (untimed); then `path` imported into
    both, at once or one after the other. Returns the wall-clock seconds of the two imports."""
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir)
    env = cardbatch_env(url)
    for org in ("1", "2"):
        for args in IMPORT_SETUP:
            subprocess.run([BINARY, "--org", org, *args], cwd=run_dir, env=env, check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([BINARY, "--quiet", "--org", org, "import", "cards", preload, "--reject-report",
                        os.path.join(run_dir, f"preload{org}.csv")], cwd=run_dir, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    commands = [[BINARY, "--quiet", "--org", org, "import", "cards", path, "--reject-report",
                 os.path.join(run_dir, f"rejects{org}.csv")] for org in ("1", "2")]
    start = time.perf_counter()
    if at_once:
        processes = [subprocess.Popen(c, cwd=run_dir, env=env, stdout=subprocess.DEVNULL) for c in commands]
        codes = [p.wait() for p in processes]
    else:
        codes = [subprocess.run(c, cwd=run_dir, env=env, stdout=subprocess.DEVNULL).returncode for c in commands]
    elapsed = time.perf_counter() - start
    if any(code not in (0, 4) for code in codes):
        sys.exit(f"an import of two orgs exited {codes}")
    shutil.rmtree(run_dir)
    return elapsed


def load_with_psql_copy(url, clean, preload, work):
    """The PostgreSQL peer: `psql \\copy` of the clean file into the plain two-key table holding the
    preloaded cards; (seconds, MiB)."""
    subprocess.run(["psql", "-q", url, "-c", PEER_TABLE], check=True)
    subprocess.run(["psql", "-q", url, "-c", f"\\copy cards FROM '{preload}' WITH (FORMAT csv, HEADER true)"],
                   check=True)
    return timed(["psql", "-q", url, "-c", f"\\copy cards FROM '{clean}' WITH (FORMAT csv, HEADER true)"], work)


PGLOADER_COMMAND = """LOAD CSV
  FROM '{path}' (card_number, series_code, status_label, external_id, customer_id)
  INTO {url}?tablename=cards (card_number, series_code, status_label, external_id, customer_id)
  WITH skip header = 1, fields terminated by ','
;
"""


def load_with_pgloader(url, clean, preload, work):
    """The pgloader peer: the clean file into the plain two-key table holding the preloaded cards; (seconds, MiB)."""
    subprocess.run(["psql", "-q", url, "-c", PEER_TABLE], check=True)
    subprocess.run(["psql", "-q", url, "-c", f"\\copy cards FROM '{preload}' WITH (FORMAT csv, HEADER true)"],
                   check=True)
    command = os.path.join(work, "load.pgl")
    with open(command, "w") as f:
        f.write(PGLOADER_COMMAND.format(path=clean, url=url))
    return timed(["pgloader", "--quiet", command], work)


def compare_import_postgres(rounds, rows, fsync):
    work = tempfile.mkdtemp(prefix="cardbatch-compare-pg-")
    try:
        with throwaway_cluster(fsync) as fresh_database:
            peers = {
                "psql \\copy": lambda n, clean, preload: load_with_psql_copy(fresh_database(f"copy{n}"), clean,
                                                                              preload, work),
            }
            if shutil.which("pgloader"):
                peers["pgloader"] = lambda n, clean, preload: load_with_pgloader(fresh_database(f"pgloader{n}"),
                                                                                  clean, preload, work)
            else:
                print("pgloader is not installed (apt-get install pgloader): compared with psql \\copy only")
            compare_imports(work, rows, rounds, fresh_database, peers,
                            f"import cards, {rows} rows, PostgreSQL (fsync {'on' if fsync else 'off'}), "
                            "vs psql \\copy and pgloader of the clean file", one_connection=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report_floors(title, floors, peer, peer_name):
    print(f"\n{title}")
    peer_median = statistics.median(peer)
    print(f"  {peer_name:<32} median {peer_median:7.3f} s  (runs: {runs(peer)})")
    for name, seconds in floors.items():
        median = statistics.median(seconds)
        print(f"  floor: {name:<28} median {median:7.3f} s  (runs: {runs(seconds)})  "
              f"best ratio {peer_name} / floor = {peer_median / median:.2f}")


# What an import writes, as the floor scripts time it: every staged row as a card, in batches of
# 10,000, and for the outbox either one event row per batch or one JSON event per card. The
# placeholders are where the two dialects differ.
FLOOR_CARDS = """INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, customer_id, run_id,
  import_record, external_id_run_id, created_at)
  SELECT 1, CASE series_code WHEN 'LUHN1' THEN 1 ELSE 2 END, card_number, external_id, status_label, customer_id,
  1, {record}, 1, {created_at} FROM {staged} WHERE {record} > {first} AND {record} <= {last};
"""
# The importer knows the id range it inserted (as cardbatch does), so the batch's event row is one VALUES row.
FLOOR_BATCH_EVENT = """INSERT INTO events (id, org_id, run_id, kind, event_count, first_row, last_row, created_at)
  VALUES ({batch}, 1, 1, 'card_created', {count}, {first_id} + 1, {first_id} + {count}, {created_at});
"""
FLOOR_JSON_EVENTS = """INSERT INTO events (id, org_id, run_id, kind, payload, created_at)
  SELECT 1000000 + id, org_id, run_id, 'card_created', {json_object}('card_id', id, 'series_id', series_id,
  'card_number', card_number, 'external_id', external_id, 'status_label', status_label,
  'status_reason', status_reason, 'customer_id', customer_id), created_at FROM cards
  WHERE org_id = 1 AND id > {first_id};
"""


def floor_writes(rows, outbox, **dialect):
    """The timed statements: one transaction, batches of 10,000 cards each with its outbox rows."""
    sql = "BEGIN;\n"
    for batch, first in enumerate(range(0, rows, BATCH)):
        last = min(first + BATCH, rows)
        # Cards of this batch have ids above the preloaded ones and the batches before.
        first_id = PRELOAD_ROWS + first
        sql += FLOOR_CARDS.format(first=first, last=last, **dialect)
        if outbox == "batch":
            sql += FLOOR_BATCH_EVENT.format(batch=batch + 1, first_id=first_id, count=last - first, **dialect)
        elif outbox == "json":
            sql += FLOOR_JSON_EVENTS.format(first_id=first_id, **dialect)
    return sql + "COMMIT;\n"


OUTBOXES = {"cards only": None, "cards + event row per batch": "batch", "cards + JSON event per card": "json"}


COPY_FLOOR = "cards by one COPY"
TWO_COPIES_FLOOR = "cards by two COPYs at once"
CARD_COLUMNS_AS_WRITTEN = ("org_id, series_id, card_number, external_id, status_label, customer_id, run_id, "
                           "import_record, external_id_run_id, created_at")


def write_cards_as_written(clean, path):
    """The clean file's rows as cardbatch stores them in `cards` (CARD_COLUMNS_AS_WRITTEN), as CSV."""
    with open(clean) as source, open(path, "w") as target:
        next(source)
        for record, line in enumerate(source, start=1):
            number, series, status, external_id, customer_id = line.rstrip("\n").split(",")
            series_id = 1 if series == "LUHN1" else 2
            target.write(f"1,{series_id},{number},{external_id},{status},{customer_id},1,{record},1,"
                         "2026-01-01T00:00:00Z\n")


def copy_floor(url, schema, rows_as_written):
    """Seconds PostgreSQL takes to `\\copy` the rows as written into cardbatch's `cards` holding the preload.
    `rows_as_written`: one file, or two halves copied at once on two connections (timed until both end)."""
    for path in schema:
        subprocess.run(["psql", "-q", url, "-f", path], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["psql", "-q", url, "-c",
                    "INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, run_id, created_at) "
                    f"SELECT 1, 1, 'P' || g, 'CY' || g, 'NOT_ISSUED', 0, now() FROM generate_series(1, {PRELOAD_ROWS}) g"],
                   check=True)
    files = [rows_as_written] if isinstance(rows_as_written, str) else rows_as_written
    start = time.perf_counter()
    copies = [subprocess.Popen(["psql", "-q", url, "-c",
                                f"\\copy cards ({CARD_COLUMNS_AS_WRITTEN}) FROM '{path}' WITH (FORMAT csv)"])
              for path in files]
    if any(copy.wait() != 0 for copy in copies):
        sys.exit(f"\\copy into {url} failed")
    return time.perf_counter() - start


def postgres_floor(rounds, rows, fsync):
    work = tempfile.mkdtemp(prefix="cardbatch-floor-pg-")
    try:
        clean, _, preload = make_files(work, rows)
        schema = [os.path.join(ROOT, "migrations", "postgres", name)
                  for name in sorted(os.listdir(os.path.join(ROOT, "migrations", "postgres")))]
        dialect = dict(record="rowid", created_at="now()", staged="staged", json_object="json_build_object")
        rows_as_written = os.path.join(work, "cards_as_written.csv")
        write_cards_as_written(clean, rows_as_written)
        halves = [os.path.join(work, f"cards_as_written_{half}.csv") for half in (1, 2)]
        with open(rows_as_written) as source:
            lines = source.readlines()
        for half, path in enumerate(halves):
            with open(path, "w") as target:
                target.writelines(lines[half * len(lines) // 2:(half + 1) * len(lines) // 2])
        floors, peer = {name: [] for name in [*OUTBOXES, COPY_FLOOR, TWO_COPIES_FLOOR]}, []
        with throwaway_cluster(fsync) as fresh_database:
            for n in range(rounds):
                floors[COPY_FLOOR].append(copy_floor(fresh_database(f"copyfloor{n}"), schema, rows_as_written))
                floors[TWO_COPIES_FLOOR].append(copy_floor(fresh_database(f"twocopies{n}"), schema, halves))
                for name, outbox in OUTBOXES.items():
                    url = fresh_database(f"floor{n}_{len(floors[name])}_{outbox or 'none'}")
                    for path in schema:
                        subprocess.run(["psql", "-q", url, "-f", path], check=True, stdout=subprocess.DEVNULL)
                    script = (
                        "CREATE TEMPORARY TABLE staged (card_number text, series_code text, status_label text, "
                        "external_id text, customer_id bigint, rowid bigserial PRIMARY KEY);\n"
                        f"\\copy staged (card_number, series_code, status_label, external_id, customer_id) "
                        f"FROM '{clean}' WITH (FORMAT csv, HEADER true)\n"
                        # The preloaded cards, as the imports find them.
                        f"INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, run_id, "
                        f"created_at) SELECT 1, 1, 'P' || g, 'CY' || g, 'NOT_ISSUED', 0, now() "
                        f"FROM generate_series(1, {PRELOAD_ROWS}) g;\n"
                        "\\timing on\n" + floor_writes(rows, outbox, **dialect))
                    out = subprocess.run(["psql", "-q", url], input=script, text=True, check=True,
                                         stdout=subprocess.PIPE).stdout
                    # One "Time: N ms" line per statement after \timing on.
                    floors[name].append(sum(float(line.split()[1]) for line in out.splitlines()
                                            if line.startswith("Time:")) / 1000)
                peer.append(load_with_psql_copy(fresh_database(f"peer{n}"), clean, preload, work)[0])
        report_floors(f"PostgreSQL's own floor for an import's writes ({rows} cards, fsync {'on' if fsync else 'off'})",
                      floors, peer, "psql \\copy")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sqlite_floor(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-floor-")
    try:
        clean, _, preload = make_files(work, rows)
        schema = "".join(open(os.path.join(ROOT, "migrations", "sqlite", name)).read()
                         for name in sorted(os.listdir(os.path.join(ROOT, "migrations", "sqlite"))))
        dialect = dict(record="rowid", created_at="'2026-01-01T00:00:00.000Z'", staged="temp.staged",
                       json_object="json_object")
        floors, peer = {name: [] for name in OUTBOXES}, []
        for n in range(rounds):
            for name, outbox in OUTBOXES.items():
                db = os.path.join(work, f"floor{n}.db")
                subprocess.run(["sqlite3", db], input=schema, text=True, check=True)
                script = (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;\n"
                    "CREATE TEMP TABLE staged (card_number TEXT, series_code TEXT, status_label TEXT, "
                    "external_id TEXT, customer_id TEXT);\n"
                    f".import --csv --skip 1 {clean} staged\n"
                    f"INSERT INTO cards (org_id, series_id, card_number, external_id, status_label, run_id, created_at) "
                    f"SELECT 1, 1, 'P' || value, 'CY' || value, 'NOT_ISSUED', 0, '' FROM generate_series(1, {PRELOAD_ROWS});\n"
                    ".timer on\n" + floor_writes(rows, outbox, **dialect))
                out = subprocess.run(["sqlite3", db], input=script, text=True, check=True,
                                     stdout=subprocess.PIPE).stdout
                # One "Run Time: real S ..." line per statement after .timer on.
                floors[name].append(sum(float(line.split()[3]) for line in out.splitlines()
                                        if line.startswith("Run Time:")))
                for path in [db, db + "-wal", db + "-shm"]:
                    if os.path.exists(path):
                        os.remove(path)
            peer.append(load_with_sqlite_import(n, clean, preload, work)[0])
        report_floors(f"SQLite's own floor for an import's writes ({rows} cards)", floors, peer, "sqlite3 .import")
    finally:
        shutil.rmtree(work, ignore_errors=True)


EUROPEAN_HEADER = "Numéro;Série;Statut;Référence;Client"
EUROPEAN_OPTIONS = ("--encoding", "windows-1252", "--column", "card_number=Numéro", "--column", "series_code=Série",
                    "--column", "status_label=Statut", "--column", "external_id=Référence",
                    "--column", "customer_id=Client")


def write_european(source, target):
    """`source` (cardbatch's CSV, no quoted commas) as a European Excel export: Windows-1252, `;`, CR LF."""
    with open(source, encoding="utf-8") as lines, open(target, "w", encoding="cp1252", newline="\r\n") as out:
        next(lines)
        out.write(EUROPEAN_HEADER + "\n")
        for line in lines:
            out.write(line.replace(",", ";"))


def alternate_imports(work, preload, rounds, cases):
    """Each case (label, short name, input, timed_import's keyword arguments) imported once per round,
    alternating. Returns {label: (seconds, MiB)} for `report`."""
    results = {label: ([], []) for label, *_ in cases}
    for n in range(rounds):
        for label, short, path, options in cases:
            seconds, peak = timed_import(work, f"{short}{n}", path, preload, **options)
            results[label][0].append(seconds)
            results[label][1].append(peak)
    return results


def compare_import_dialect(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-dialect-")
    try:
        _, dirty, preload = make_files(work, rows)
        european = os.path.join(work, "european.csv")
        write_european(dirty, european)
        results = alternate_imports(work, preload, rounds, [
            ("cardbatch UTF-8 own headers", "utf8", dirty, {}),
            ("cardbatch Windows-1252 ; mapped", "eu", european, {"options": EUROPEAN_OPTIONS})])
        report(f"import cards, {rows} rows (1% bad), SQLite: a European Excel export vs cardbatch's own format",
               results, {})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare_import_redelivered(rounds, rows):
    work = tempfile.mkdtemp(prefix="cardbatch-redelivered-")
    try:
        _, dirty, preload = make_files(work, rows)
        # Streamed, not read whole: a forked child's peak RSS counts what this process holds.
        paths = {name: os.path.join(work, f"{name}.csv") for name in ("yesterday", "today", "cumulative")}
        with open(dirty, encoding="utf-8") as lines, open(paths["yesterday"], "w", encoding="utf-8") as yesterday, \
                open(paths["today"], "w", encoding="utf-8") as today, \
                open(paths["cumulative"], "w", encoding="utf-8") as cumulative:
            header = next(lines)
            for out in (yesterday, today, cumulative):
                out.write(header)
            for n, line in enumerate(lines):
                (yesterday if n < rows // 2 else today).write(line)
                cumulative.write(line)
        earlier = {"earlier": [paths["yesterday"]]}
        results = alternate_imports(work, preload, rounds, [
            ("cardbatch cumulative file", "all", paths["cumulative"], earlier),
            ("cardbatch today's half alone", "new", paths["today"], earlier)])
        report(f"import cards, {rows} rows (1% bad), SQLite, half of them re-delivered unchanged, vs the new half "
               f"alone (yesterday's half imported before, untimed)", results, {})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_memory(rows):
    work = tempfile.mkdtemp(prefix="cardbatch-memory-")
    try:
        path, preload = os.path.join(work, "cards.csv"), os.path.join(work, "preload.csv")
        subprocess.run([sys.executable, MAKE_CARDS, path, str(rows), "--dirty", "--preload", preload,
                        "--preload-rows", str(PRELOAD_ROWS)], check=True)
        seconds, peak = timed_import(work, "run", path, preload)
        print(f"\nimport cards of {rows} rows (1% bad) onto {PRELOAD_ROWS} stored cards: "
              f"{seconds:.1f} s, peak RSS {peak:.1f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comparison", choices=["generate", "import-sqlite", "import-postgres", "import-dialect",
                                               "import-citus", "import-redelivered", "memory", "sqlite-floor", "postgres-floor"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--fsync", choices=["on", "off"], default="on")
    args = parser.parse_args()
    build()
    fsync = args.fsync == "on"
    if args.comparison == "generate":
        compare_generate(args.rounds or 7)
    elif args.comparison == "import-sqlite":
        compare_import_sqlite(args.rounds or 5, args.rows or 1_000_000)
    elif args.comparison == "import-postgres":
        compare_import_postgres(args.rounds or 3, args.rows or 1_000_000, fsync)
    elif args.comparison == "import-dialect":
        compare_import_dialect(args.rounds or 5, args.rows or 1_000_000)
    elif args.comparison == "import-citus":
        compare_import_citus(args.rounds or 3, args.rows or 1_000_000, fsync)
    elif args.comparison == "import-redelivered":
        compare_import_redelivered(args.rounds or 5, args.rows or 1_000_000)
    elif args.comparison == "sqlite-floor":
        sqlite_floor(args.rounds or 3, args.rows or 1_000_000)
    elif args.comparison == "postgres-floor":
        postgres_floor(args.rounds or 3, args.rows or 1_000_000, fsync)
    else:
        measure_memory(args.rows or 3_000_000)


if __name__ == "__main__":
    main()
