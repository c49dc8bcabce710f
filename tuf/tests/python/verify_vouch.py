#!/usr/bin/env python3
"""Check a directory of TUF metadata with python-tuf, the reference implementation.

Usage:

    target/venv/bin/python tuf/tests/python/verify_vouch.py DIR [--check-expiry]

DIR holds root.json, targets.json, snapshot.json and timestamp.json, and
optionally delegated targets roles as <name>.json, where a name containing '/'
is percent-encoded (urllib.parse.quote(name, safe=""), so "targets/releases"
is stored as "targets%2Freleases.json").

Checks, in order:
  - every file parses with Metadata.from_bytes and has the expected _type;
  - root is signed by a threshold of its own root keys;
  - targets, snapshot and timestamp are signed by a threshold of the keys root
    assigns them;
  - every delegated role reachable from targets (through delegations, nested
    ones included) that has a file is signed by a threshold of the keys its
    delegator assigns it;
  - timestamp lists snapshot.json with snapshot's version (and its length and
    hashes, when given, match snapshot.json's bytes);
  - snapshot lists targets.json and every delegated role that has a file, with
    that role's version (and length and hashes, when given);
  - with --check-expiry, that no role has expired.

On success prints one JSON line and exits 0:

    {"ok": true,
     "roles": {"root": 1, "targets": 3, ..., "releases": 2},
     "targets": {"v1.0.0": {"length": 1234, "sha256": "ab..."}, ...},
     "target_roles": {"v1.0.0": "targets", "v2.0.0": "releases", ...}}

"targets" holds every target a TUF client would resolve: each name is looked up
the way python-tuf's client does (pre-order depth-first through the delegations,
honouring paths, path_hash_prefixes and terminating), so a target listed by a
role outside the paths delegated to it is left out. "target_roles" says which
role supplied each one.

On any failure prints {"ok": false, "error": "..."} and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote

from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    Targets,
    Timestamp,
)

# Same bound as python-tuf's client (UpdaterConfig.max_delegations).
MAX_DELEGATIONS = 32


class CheckError(Exception):
    pass


def role_file(directory: str, role: str) -> str:
    return os.path.join(directory, quote(role, safe="") + ".json")


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def load(directory: str, role: str, expected_type: str) -> tuple[Metadata, bytes]:
    path = role_file(directory, role)
    try:
        data = read(path)
    except OSError as e:
        raise CheckError(f"{role}: cannot read {os.path.basename(path)}: {e}") from e
    try:
        md = Metadata.from_bytes(data)
    except Exception as e:  # noqa: BLE001 - any parse failure is a check failure
        raise CheckError(f"{role}: does not parse: {type(e).__name__}: {e}") from e
    if md.signed.type != expected_type:
        raise CheckError(f"{role}: _type is {md.signed.type!r}, expected {expected_type!r}")
    return md, data


def verify(delegator: Root | Targets, delegator_name: str, role: str, md: Metadata) -> None:
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    except Exception as e:  # noqa: BLE001
        raise CheckError(
            f"{role}: signature check against {delegator_name} failed: {type(e).__name__}: {e}"
        ) from e


def check_meta(listing: str, entry: MetaFile | None, name: str, md: Metadata, data: bytes) -> None:
    if entry is None:
        raise CheckError(f"{listing} does not list {name}")
    if entry.version != md.signed.version:
        raise CheckError(
            f"{listing} lists {name} version {entry.version}, file has version {md.signed.version}"
        )
    if entry.length is not None or entry.hashes is not None:
        try:
            entry.verify_length_and_hashes(data)
        except Exception as e:  # noqa: BLE001
            raise CheckError(f"{listing} entry for {name} does not match the file: {e}") from e


def delegated_roles(targets: Targets, directory: str) -> list[str]:
    """Names delegated by `targets`, in delegation order, that have a file."""
    if targets.delegations is None:
        return []
    if targets.delegations.roles is not None:
        names = list(targets.delegations.roles)
    else:
        succinct = targets.delegations.succinct_roles
        assert succinct is not None
        names = sorted(
            name
            for name in (
                _unquote_file(f) for f in os.listdir(directory) if f.endswith(".json")
            )
            if succinct.is_delegated_role(name)
        )
    return [n for n in names if os.path.isfile(role_file(directory, n))]


def _unquote_file(filename: str) -> str:
    return unquote(filename[: -len(".json")])


def lookup(name: str, loaded: dict[str, Metadata]) -> str | None:
    """Role that a TUF client would take `name` from, or None."""
    to_visit = [Targets.type]
    visited: set[str] = set()
    while to_visit and len(visited) <= MAX_DELEGATIONS:
        role = to_visit.pop()
        if role in visited:
            continue
        visited.add(role)
        md = loaded.get(role)
        if md is None:
            continue
        targets = md.signed
        if name in targets.targets:
            return role
        if targets.delegations is None:
            continue
        children = []
        for child, terminating in targets.delegations.get_roles_for_target(name):
            children.append(child)
            if terminating:
                to_visit = []
                break
        to_visit.extend(reversed(children))
    return None


def check(directory: str, check_expiry: bool) -> dict[str, Any]:
    root_md, _ = load(directory, Root.type, Root.type)
    root = root_md.signed
    verify(root, "root", Root.type, root_md)

    timestamp_md, _ = load(directory, Timestamp.type, Timestamp.type)
    snapshot_md, snapshot_bytes = load(directory, Snapshot.type, Snapshot.type)
    targets_md, targets_bytes = load(directory, Targets.type, Targets.type)
    verify(root, "root", Timestamp.type, timestamp_md)
    verify(root, "root", Snapshot.type, snapshot_md)
    verify(root, "root", Targets.type, targets_md)

    check_meta(
        "timestamp",
        timestamp_md.signed.snapshot_meta,
        "snapshot.json",
        snapshot_md,
        snapshot_bytes,
    )
    snapshot_meta = snapshot_md.signed.meta
    check_meta("snapshot", snapshot_meta.get("targets.json"), "targets.json", targets_md, targets_bytes)

    loaded: dict[str, Metadata] = {Targets.type: targets_md}
    order = [Root.type, Targets.type, Snapshot.type, Timestamp.type]
    # Breadth-first over the delegation tree; a role delegated twice is loaded once
    # (from its first delegator), as a client would trust the first path to it.
    queue = [Targets.type]
    while queue:
        delegator_name = queue.pop(0)
        delegator = loaded[delegator_name].signed
        for name in delegated_roles(delegator, directory):
            if name in loaded or name in (Root.type, Snapshot.type, Timestamp.type):
                continue
            md, data = load(directory, name, Targets.type)
            verify(delegator, delegator_name, name, md)
            check_meta("snapshot", snapshot_meta.get(f"{name}.json"), f"{name}.json", md, data)
            loaded[name] = md
            order.append(name)
            queue.append(name)

    all_md = {Root.type: root_md, Snapshot.type: snapshot_md, Timestamp.type: timestamp_md, **loaded}
    if check_expiry:
        now = datetime.now(timezone.utc)
        expired = [r for r in order if all_md[r].signed.is_expired(now)]
        if expired:
            raise CheckError(f"expired: {', '.join(expired)}")

    names: list[str] = []
    for role in order[1:]:
        if role in loaded:
            names.extend(n for n in loaded[role].signed.targets if n not in names)
    targets_out: dict[str, Any] = {}
    target_roles: dict[str, str] = {}
    for name in names:
        role = lookup(name, loaded)
        if role is None:
            continue
        tf = loaded[role].signed.targets[name]
        targets_out[name] = {"length": tf.length, "sha256": tf.hashes.get("sha256")}
        target_roles[name] = role

    return {
        "ok": True,
        "roles": {r: all_md[r].signed.version for r in order},
        "targets": targets_out,
        "target_roles": target_roles,
    }


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    unknown = flags - {"--check-expiry"}
    if len(args) != 1 or unknown:
        print(json.dumps({"ok": False, "error": "usage: verify_vouch.py DIR [--check-expiry]"}))
        return 1
    directory = args[0]
    try:
        result = check(directory, "--check-expiry" in flags)
    except CheckError as e:
        print(json.dumps({"ok": False, "error": str(e)}))
        return 1
    except Exception as e:  # noqa: BLE001 - report anything unexpected the same way
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
