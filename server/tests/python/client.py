#!/usr/bin/env python3
"""Resolve targets through a vouch server with python-tuf's ngclient.Updater.

Usage:

    python client.py METADATA_BASE_URL TRUSTED_ROOT METADATA_DIR [--log-urls FILE] NAME...

METADATA_BASE_URL is the GUN's TUF directory on the server, e.g.
http://127.0.0.1:4443/v2/example.com/app/_trust/tuf/ . TRUSTED_ROOT is the
root metadata the client trusts on first use (the GUN's first root). When
METADATA_DIR already holds a root.json from an earlier run, that cached root is
trusted instead and TRUSTED_ROOT is ignored, so running again with the same
directory is an incremental update, as a long-lived client does.

The client runs Updater.refresh() and then get_targetinfo(NAME) for every NAME.
With --log-urls, every URL the client fetched is written to FILE, one a line,
in the order it fetched them.

On success prints one JSON line and exits 0:

    {"v1": {"length": 1002, "sha256": "ab..."}, "latest": null}

where null means python-tuf found no trusted target of that name. On any error
prints {"error": "..."} and exits 1.
"""

import argparse
import json
import os
import sys
import traceback

from tuf.ngclient import Updater
from tuf.ngclient import Urllib3Fetcher


class RecordingFetcher(Urllib3Fetcher):
    """The default fetcher, remembering every URL it was asked for."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def _fetch(self, url):
        self.urls.append(url)
        return super()._fetch(url)


def resolve(args):
    os.makedirs(args.metadata_dir, exist_ok=True)
    cached_root = os.path.join(args.metadata_dir, "root.json")
    if os.path.exists(cached_root):
        bootstrap = None
    else:
        with open(args.trusted_root, "rb") as f:
            bootstrap = f.read()

    fetcher = RecordingFetcher()
    try:
        updater = Updater(
            metadata_dir=args.metadata_dir,
            metadata_base_url=args.metadata_base_url,
            target_base_url=None,
            fetcher=fetcher,
            bootstrap=bootstrap,
        )
        updater.refresh()
        found = {}
        for name in args.names:
            info = updater.get_targetinfo(name)
            if info is None:
                found[name] = None
            else:
                found[name] = {
                    "length": info.length,
                    "sha256": info.hashes.get("sha256"),
                }
        return found
    finally:
        if args.log_urls:
            with open(args.log_urls, "w", encoding="utf-8") as f:
                for url in fetcher.urls:
                    f.write(url + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metadata_base_url")
    parser.add_argument("trusted_root")
    parser.add_argument("metadata_dir")
    parser.add_argument("--log-urls", default=None)
    parser.add_argument("names", nargs="*")
    args = parser.parse_intermixed_args()
    try:
        found = resolve(args)
    except Exception as e:  # every failure is reported the same way
        traceback.print_exc(file=sys.stderr)
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(found, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
