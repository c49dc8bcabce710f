"""Times python-tuf's ngclient Updater on a repository served over HTTP.

Called by the vouch-verifier benchmark (verifier/benches/update.rs) with the URL of the
loopback server it started, so both clients fetch the same files from the same server.

A cold update: a fresh metadata directory, an Updater bootstrapped with the pinned root,
Updater.refresh(),
then get_targetinfo(TARGET). Warm lookups: get_targetinfo(TARGET) repeated on one
refreshed Updater. Prints one JSON object (numbers as strings) on stdout.
"""

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

import tuf
from tuf.ngclient import Updater


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--cold", type=int, default=50)
    ap.add_argument("--lookups", type=int, default=20000)
    args = ap.parse_args()

    with open(args.root, "rb") as f:
        root = f.read()
    work = tempfile.mkdtemp()
    try:
        cold = []
        for i in range(args.cold):
            d = os.path.join(work, f"cold-{i}")
            started = time.perf_counter()
            os.makedirs(d)
            u = Updater(d, args.url, bootstrap=root)
            u.refresh()
            info = u.get_targetinfo(args.target)
            cold.append(time.perf_counter() - started)
            assert info is not None

        d = os.path.join(work, "warm")
        os.makedirs(d)
        u = Updater(d, args.url, bootstrap=root)
        u.refresh()
        started = time.perf_counter()
        for _ in range(args.lookups):
            assert u.get_targetinfo(args.target) is not None
        warm = time.perf_counter() - started
    finally:
        shutil.rmtree(work)

    print(
        json.dumps(
            {
                "tuf_version": tuf.__version__,
                "cold_median_s": str(statistics.median(cold)),
                "lookups_per_s": str(args.lookups / warm),
            }
        )
    )


if __name__ == "__main__":
    main()
