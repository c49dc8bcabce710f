"""Writes a TUF repository with python-tuf, for vouch-verifier's interop test.

Usage: make_repo.py OUTDIR

The repository exercises what a verifier must get right against the reference writer:
- consistent snapshots (versioned file names, roots as N.root.json);
- a root rotation: root v2 moves root to an ECDSA and an RSA-PSS key with threshold 2,
  cross-signed by the ed25519 root key of v1;
- snapshot listing length and hashes of every targets role, timestamp likewise for snapshot;
- top-level targets with image targets, and a delegated role whose name contains a slash
  ("team/app", file name URL-encoded) for the paths "app/*", signed with ECDSA;
- targets metadata at version 2 (an earlier version 1 also served).

It writes the served files to OUTDIR/repo and what a client must conclude to
OUTDIR/expected.json, after checking with python-tuf's own ngclient that the repository
verifies.
"""

import hashlib
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from urllib import parse

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface
from tuf.api.exceptions import DownloadHTTPError

EXPIRES = datetime(2099, 1, 1, tzinfo=timezone.utc)


def manifest(name: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "name": name}, sort_keys=True).encode()


def image(name: str, data: bytes) -> TargetFile:
    t = TargetFile.from_data(name, data, ["sha256"])
    t.unrecognized_fields["custom"] = {"mediaType": "application/vnd.oci.image.manifest.v1+json"}
    return t


def main() -> int:
    out = sys.argv[1]
    repo = os.path.join(out, "repo")
    os.makedirs(repo, exist_ok=True)

    def write(name: str, md: Metadata) -> bytes:
        data = md.to_bytes()
        with open(os.path.join(repo, name), "wb") as f:
            f.write(data)
        return data

    root_v1_key = CryptoSigner.generate_ed25519()
    root_ecdsa = CryptoSigner.generate_ecdsa()
    root_rsa = CryptoSigner.generate_rsa()
    targets_key = CryptoSigner.generate_ed25519()
    snapshot_key = CryptoSigner.generate_ecdsa()
    timestamp_key = CryptoSigner.generate_ed25519()
    team_key = CryptoSigner.generate_ecdsa()

    root = Root(expires=EXPIRES, consistent_snapshot=True)
    root.add_key(root_v1_key.public_key, Root.type)
    root.add_key(targets_key.public_key, Targets.type)
    root.add_key(snapshot_key.public_key, Snapshot.type)
    root.add_key(timestamp_key.public_key, Timestamp.type)
    md = Metadata(root)
    md.sign(root_v1_key)
    root_v1 = write("1.root.json", md)

    root.version = 2
    root.revoke_key(root_v1_key.public_key.keyid, Root.type)
    root.add_key(root_ecdsa.public_key, Root.type)
    root.add_key(root_rsa.public_key, Root.type)
    root.roles[Root.type].threshold = 2
    md = Metadata(root)
    md.sign(root_v1_key, append=True)
    md.sign(root_ecdsa, append=True)
    md.sign(root_rsa, append=True)
    write("2.root.json", md)

    expected = {"targets": {}, "missing": ["app/unknown", "other/thing", "v9"]}

    team = Targets(version=1, expires=EXPIRES)
    for name in ["app/v1", "app/v2"]:
        data = manifest(name)
        team.targets[name] = image(name, data)
        expected["targets"][name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "length": len(data),
            "role_path": ["targets", "team/app"],
        }
    team_file = f"1.{parse.quote('team/app', '')}.json"
    md = Metadata(team)
    md.sign(team_key)
    team_bytes = write(team_file, md)

    targets = Targets(version=1, expires=EXPIRES)
    md = Metadata(targets)
    md.sign(targets_key)
    write("1.targets.json", md)
    targets.version = 2
    for name in ["latest", "v1.2.0"]:
        data = manifest(name)
        targets.targets[name] = image(name, data)
        expected["targets"][name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "length": len(data),
            "role_path": ["targets"],
        }
    targets.delegations = Delegations(
        keys={team_key.public_key.keyid: team_key.public_key},
        roles={
            "team/app": DelegatedRole(
                name="team/app",
                keyids=[team_key.public_key.keyid],
                threshold=1,
                terminating=True,
                paths=["app/*"],
            )
        },
    )
    md = Metadata(targets)
    md.sign(targets_key)
    targets_bytes = write("2.targets.json", md)

    snapshot = Snapshot(version=1, expires=EXPIRES)
    snapshot.meta["targets.json"] = MetaFile(
        version=2, length=len(targets_bytes), hashes={"sha256": hashlib.sha256(targets_bytes).hexdigest()}
    )
    snapshot.meta["team/app.json"] = MetaFile(
        version=1, length=len(team_bytes), hashes={"sha256": hashlib.sha256(team_bytes).hexdigest()}
    )
    md = Metadata(snapshot)
    md.sign(snapshot_key)
    snapshot_bytes = write("1.snapshot.json", md)

    timestamp = Timestamp(version=1, expires=EXPIRES, snapshot_meta=MetaFile(
        version=1, length=len(snapshot_bytes), hashes={"sha256": hashlib.sha256(snapshot_bytes).hexdigest()}
    ))
    md = Metadata(timestamp)
    md.sign(timestamp_key)
    write("timestamp.json", md)

    # The reference client must accept what was written.
    class DirectoryFetcher(FetcherInterface):
        def _fetch(self, url: str):
            path = os.path.join(repo, url.rsplit("/", 1)[1])
            if not os.path.exists(path):
                raise DownloadHTTPError(f"not found: {url}", 404)
            with open(path, "rb") as f:
                return iter([f.read()])

    with tempfile.TemporaryDirectory() as tmp:
        u = Updater(tmp, "http://repo.invalid/", fetcher=DirectoryFetcher(), bootstrap=root_v1)
        u.refresh()
        for name in expected["targets"]:
            assert u.get_targetinfo(name) is not None, name
        for name in expected["missing"]:
            assert u.get_targetinfo(name) is None, name

    expected["root_version"] = 2
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
