#!/usr/bin/env python3
"""Comparison runs: cardbatch against a bare peer, alternating, in one run.

    python3 benches/compare.py generate [--rounds N]

generate: `cardbatch cards generate --count 100000` on a RANDOM_LUHN series
(numbers computed, stored in SQLite with their unique keys, a run row and an
event) against `sqlite3 .import` of 100,000 ready-made numbers into a table
with one unique key. Each round uses fresh databases. Reports the median wall
time of each, the ratio (peer / cardbatch: above 1.0 means cardbatch is
faster), and the peak RSS of each process.

The release binary is built first; all files go to a temporary directory.
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comparison", choices=["generate"])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    build()
    if args.comparison == "generate":
        compare_generate(args.rounds)


if __name__ == "__main__":
    main()
