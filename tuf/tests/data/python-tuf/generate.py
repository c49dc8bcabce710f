#!/usr/bin/env python3
"""Write a TUF repository with python-tuf's Metadata API, for interop tests.

Output (all under this directory):

  repo/            consistent-snapshot repository: 1.root.json, 1.targets.json,
                   1.releases.json, 1.nightly.json, 1.snapshot.json,
                   timestamp.json, and unprefixed copies of the versioned files
  expected.json    facts the Rust tests assert: keys, roles, delegations, targets
  keys/            the PKCS#8 private keys used (INSECURE, test-only)

Keys are read from keys/ when present so that key ids stay stable across
regenerations; missing keys are generated with CryptoSigner and saved.
Ed25519 signatures are deterministic, ECDSA and RSA-PSS ones are not, so the
signature values change on every run while everything else stays the same.

Before writing expected.json the generator verifies its own output twice: with
the delegators' verify_delegate() over the files as written, and with
python-tuf's full client (ngclient.Updater) reading the repository from disk.

Run with the project venv (see scripts/python-env):

    target/venv/bin/python tuf/tests/data/python-tuf/generate.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from importlib.metadata import version as dist_version
from typing import Any

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api.exceptions import DownloadHTTPError
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Key,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import FetcherInterface, Updater

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "repo")
KEYS = os.path.join(HERE, "keys")
EXPECTED = os.path.join(HERE, "expected.json")

EXPIRES = datetime(2099, 1, 1, tzinfo=timezone.utc)
MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
# Written indented (not canonical) on purpose: signatures cover the canonical
# form of "signed", never the file bytes, and readers must cope with that.
SERIALIZER = JSONSerializer(compact=False)

# label -> kind. The label is also the key's file name under keys/.
KEY_KINDS = {
    "root-ed25519": "ed25519",
    "root-ecdsa": "ecdsa",
    "root-rsa": "rsa",
    "targets-ed25519": "ed25519",
    "snapshot-ecdsa": "ecdsa",
    "timestamp-ed25519": "ed25519",
    "releases-ecdsa": "ecdsa",
    "nightly-ed25519": "ed25519",
}


def load_or_create_signer(label: str) -> CryptoSigner:
    path = os.path.join(KEYS, label + ".pem")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return CryptoSigner(load_pem_private_key(f.read(), password=None))
    kind = KEY_KINDS[label]
    if kind == "ed25519":
        signer = CryptoSigner.generate_ed25519()
    elif kind == "ecdsa":
        signer = CryptoSigner.generate_ecdsa()  # ecdsa-sha2-nistp256
    else:
        signer = CryptoSigner.generate_rsa()  # rsassa-pss-sha256, 3072 bits
    pem = signer._private_key.private_bytes(  # noqa: SLF001 - test key export
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    os.makedirs(KEYS, exist_ok=True)
    with open(path, "wb") as f:
        f.write(pem)
    return signer


def manifest(name: str, layers: int) -> bytes:
    """A small, deterministic OCI image manifest standing in for a real one."""
    body = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(("config " + name).encode()).hexdigest(),
            "size": 1024 + layers,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + hashlib.sha256(f"layer {name} {i}".encode()).hexdigest(),
                "size": 4096 * (i + 1),
            }
            for i in range(layers)
        ],
    }
    return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"


def image_target(name: str, data: bytes, annotations: dict[str, str] | None = None) -> TargetFile:
    target = TargetFile.from_data(name, data, ["sha256"])
    custom: dict[str, Any] = {"mediaType": MEDIA_TYPE}
    if annotations:
        custom["annotations"] = annotations
    target.unrecognized_fields["custom"] = custom
    return target


def new_metadata(signed: Any) -> Metadata:
    return Metadata(signed, {})


def main() -> int:
    s = {label: load_or_create_signer(label) for label in KEY_KINDS}
    key: dict[str, Key] = {label: signer.public_key for label, signer in s.items()}

    # --- root: threshold 2 of 3 (ed25519, ecdsa, rsa); all three sign ---------
    root = Root(expires=EXPIRES, consistent_snapshot=True)
    for label in ("root-ed25519", "root-ecdsa", "root-rsa"):
        root.add_key(key[label], Root.type)
    root.roles[Root.type].threshold = 2
    root.add_key(key["targets-ed25519"], Targets.type)
    root.add_key(key["snapshot-ecdsa"], Snapshot.type)
    root.add_key(key["timestamp-ed25519"], Timestamp.type)
    root_md = new_metadata(root)
    for label in ("root-ed25519", "root-ecdsa", "root-rsa"):
        root_md.sign(s[label], append=True)

    # --- top-level targets with two delegations --------------------------------
    digest_manifest = manifest("untagged", 1)
    digest_name = "sha256:" + hashlib.sha256(digest_manifest).hexdigest()
    top_targets = {
        "v1.0.0": image_target(
            "v1.0.0",
            manifest("v1.0.0", 2),
            {"org.opencontainers.image.version": "1.0.0"},
        ),
        "latest": image_target("latest", manifest("latest", 3)),
        digest_name: image_target(digest_name, digest_manifest),
    }

    nightly_name = "nightly-20990101"
    nightly_prefix = hashlib.sha256(nightly_name.encode()).hexdigest()[:2]
    # A second prefix that cannot match the nightly target, so the role's list
    # has more than one entry.
    other_prefix = next(
        f"{i:02x}" for i in range(256) if f"{i:02x}" != nightly_prefix
    )
    releases_role = DelegatedRole(
        name="releases",
        keyids=[key["releases-ecdsa"].keyid],
        threshold=1,
        terminating=True,
        paths=["v*"],
    )
    nightly_role = DelegatedRole(
        name="nightly",
        keyids=[key["nightly-ed25519"].keyid],
        threshold=1,
        terminating=False,
        path_hash_prefixes=sorted([nightly_prefix, other_prefix]),
    )
    targets = Targets(
        expires=EXPIRES,
        targets=top_targets,
        delegations=Delegations(
            keys={
                key["releases-ecdsa"].keyid: key["releases-ecdsa"],
                key["nightly-ed25519"].keyid: key["nightly-ed25519"],
            },
            roles={"releases": releases_role, "nightly": nightly_role},
        ),
    )
    targets_md = new_metadata(targets)
    targets_md.sign(s["targets-ed25519"])

    releases = Targets(
        expires=EXPIRES,
        targets={
            "v2.0.0": image_target(
                "v2.0.0",
                manifest("v2.0.0", 4),
                {"org.opencontainers.image.version": "2.0.0"},
            )
        },
    )
    releases_md = new_metadata(releases)
    releases_md.sign(s["releases-ecdsa"])

    nightly = Targets(
        expires=EXPIRES,
        targets={nightly_name: image_target(nightly_name, manifest(nightly_name, 2))},
    )
    nightly_md = new_metadata(nightly)
    nightly_md.sign(s["nightly-ed25519"])

    for name in releases.targets:
        assert releases_role.is_delegated_path(name), name
    for name in nightly.targets:
        assert nightly_role.is_delegated_path(name), name
        assert not releases_role.is_delegated_path(name), name

    # --- snapshot and timestamp -------------------------------------------------
    targets_bytes = targets_md.to_bytes(SERIALIZER)
    releases_bytes = releases_md.to_bytes(SERIALIZER)
    nightly_bytes = nightly_md.to_bytes(SERIALIZER)
    snapshot = Snapshot(
        expires=EXPIRES,
        meta={
            # targets.json with length and hash, the delegated roles by version
            # only: both forms appear in the wild.
            "targets.json": MetaFile.from_data(targets.version, targets_bytes, ["sha256"]),
            "releases.json": MetaFile(version=releases.version),
            "nightly.json": MetaFile(version=nightly.version),
        },
    )
    snapshot_md = new_metadata(snapshot)
    snapshot_md.sign(s["snapshot-ecdsa"])
    snapshot_bytes = snapshot_md.to_bytes(SERIALIZER)

    timestamp = Timestamp(
        expires=EXPIRES,
        snapshot_meta=MetaFile.from_data(snapshot.version, snapshot_bytes, ["sha256"]),
    )
    timestamp_md = new_metadata(timestamp)
    timestamp_md.sign(s["timestamp-ed25519"])
    timestamp_bytes = timestamp_md.to_bytes(SERIALIZER)
    root_bytes = root_md.to_bytes(SERIALIZER)

    # --- write ------------------------------------------------------------------
    if os.path.isdir(REPO):
        shutil.rmtree(REPO)
    os.makedirs(REPO)
    versioned = {
        "root": (root.version, root_bytes),
        "targets": (targets.version, targets_bytes),
        "releases": (releases.version, releases_bytes),
        "nightly": (nightly.version, nightly_bytes),
        "snapshot": (snapshot.version, snapshot_bytes),
    }
    for role, (ver, data) in versioned.items():
        for fname in (f"{ver}.{role}.json", f"{role}.json"):
            with open(os.path.join(REPO, fname), "wb") as f:
                f.write(data)
    with open(os.path.join(REPO, "timestamp.json"), "wb") as f:
        f.write(timestamp_bytes)

    self_check()
    client_check(
        root_bytes,
        expect_found={
            **{n: "targets" for n in top_targets},
            "v2.0.0": "releases",
            nightly_name: "nightly",
        },
        # Matches releases' "v*" but is not in it; releases is terminating, so
        # the search stops there and nightly is never consulted.
        expect_missing=["v9.9.9", "nightly-19700101"],
    )

    # --- expected facts -------------------------------------------------------
    loaded = {
        role: Metadata.from_file(os.path.join(REPO, f"{role}.json"))
        for role in ("root", "targets", "snapshot", "timestamp", "releases", "nightly")
    }
    labels = {k.keyid: label for label, k in key.items()}
    expected = build_expected(loaded, labels)
    with open(EXPECTED, "w", encoding="utf-8", newline="\n") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")

    print(f"wrote {REPO} and {EXPECTED}")
    return 0


def self_check() -> None:
    """Verify every role as written, with the delegators' verify_delegate()."""

    def load(name: str) -> Metadata:
        return Metadata.from_file(os.path.join(REPO, name))

    root_md = load("1.root.json")
    root = root_md.signed
    assert isinstance(root, Root)
    root.verify_delegate(Root.type, root_md.signed_bytes, root_md.signatures)
    # Every one of the three root keys must have produced a valid signature,
    # the RSA-PSS one included, not merely the threshold of two.
    result = root.get_verification_result(Root.type, root_md.signed_bytes, root_md.signatures)
    assert len(result.signed) == 3 and not result.unsigned, result

    targets_md = load("1.targets.json")
    snapshot_md = load("1.snapshot.json")
    timestamp_md = load("timestamp.json")
    for role, md in (
        (Targets.type, targets_md),
        (Snapshot.type, snapshot_md),
        (Timestamp.type, timestamp_md),
    ):
        root.verify_delegate(role, md.signed_bytes, md.signatures)

    targets = targets_md.signed
    assert isinstance(targets, Targets) and targets.delegations is not None
    for role in ("releases", "nightly"):
        md = load(f"1.{role}.json")
        targets.verify_delegate(role, md.signed_bytes, md.signatures)

    # Unprefixed copies are byte-identical to the versioned files.
    for role in ("root", "targets", "snapshot", "releases", "nightly"):
        with open(os.path.join(REPO, f"1.{role}.json"), "rb") as a, open(
            os.path.join(REPO, f"{role}.json"), "rb"
        ) as b:
            assert a.read() == b.read(), role

    # snapshot/timestamp meta agree with what is on disk.
    with open(os.path.join(REPO, "1.targets.json"), "rb") as f:
        snapshot_md.signed.meta["targets.json"].verify_length_and_hashes(f.read())
    with open(os.path.join(REPO, "1.snapshot.json"), "rb") as f:
        timestamp_md.signed.snapshot_meta.verify_length_and_hashes(f.read())


class DirectoryFetcher(FetcherInterface):
    """Serves metadata URLs from REPO; unknown files answer 404."""

    PREFIX = "file-repo:/"

    def _fetch(self, url: str) -> Iterator[bytes]:
        name = url[len(self.PREFIX) :]
        path = os.path.join(REPO, name)
        if "/" in name or not os.path.isfile(path):
            raise DownloadHTTPError(f"not found: {name}", 404)
        with open(path, "rb") as f:
            return iter([f.read()])


def client_check(root_bytes: bytes, expect_found: dict[str, str], expect_missing: list[str]) -> None:
    """Run python-tuf's client workflow over the written repository."""
    with tempfile.TemporaryDirectory() as tmp:
        updater = Updater(
            metadata_dir=tmp,
            metadata_base_url=DirectoryFetcher.PREFIX,
            fetcher=DirectoryFetcher(),
            bootstrap=root_bytes,
        )
        updater.refresh()
        for name in expect_found:
            info = updater.get_targetinfo(name)
            assert info is not None, f"client did not find {name}"
        for name in expect_missing:
            assert updater.get_targetinfo(name) is None, f"client unexpectedly found {name}"


def build_expected(md: dict[str, Metadata], labels: dict[str, str]) -> dict[str, Any]:
    root = md["root"].signed
    targets = md["targets"].signed
    assert isinstance(root, Root) and isinstance(targets, Targets)
    assert targets.delegations is not None and targets.delegations.roles is not None

    keys: dict[str, Any] = {}

    def add_key(k: Key) -> None:
        # The key id is the SHA-256 of the canonical JSON of the public key
        # object; python-tuf does not re-check this when loading, so do it here.
        key_object = {"keytype": k.keytype, "scheme": k.scheme, "keyval": k.keyval}
        keyid = hashlib.sha256(encode_canonical(key_object).encode("utf-8")).hexdigest()
        assert keyid == k.keyid, (keyid, k.keyid)
        keys[k.keyid] = {
            "label": labels[k.keyid],
            "keytype": k.keytype,
            "scheme": k.scheme,
            "public": k.keyval["public"],
        }

    for k in root.keys.values():
        add_key(k)
    for k in targets.delegations.keys.values():
        add_key(k)

    roles: dict[str, Any] = {}
    for name in ("root", "targets", "snapshot", "timestamp"):
        r = root.roles[name]
        roles[name] = {
            "version": md[name].signed.version,
            "threshold": r.threshold,
            "keyids": sorted(r.keyids),
            "signed_by": sorted(md[name].signatures),
            "delegated_by": "root",
        }
    delegations: dict[str, Any] = {}
    for name, r in targets.delegations.roles.items():
        roles[name] = {
            "version": md[name].signed.version,
            "threshold": r.threshold,
            "keyids": sorted(r.keyids),
            "signed_by": sorted(md[name].signatures),
            "delegated_by": "targets",
        }
        d: dict[str, Any] = {"terminating": r.terminating}
        if r.paths is not None:
            d["paths"] = r.paths
        if r.path_hash_prefixes is not None:
            d["path_hash_prefixes"] = r.path_hash_prefixes
        delegations[name] = d

    all_targets: dict[str, Any] = {}
    for role in ("targets", "releases", "nightly"):
        for name, tf in md[role].signed.targets.items():
            all_targets[name] = {
                "role": role,
                "length": tf.length,
                "sha256": tf.hashes["sha256"],
                "custom": tf.custom,
            }

    snapshot = md["snapshot"].signed
    timestamp = md["timestamp"].signed
    return {
        "python_tuf_version": dist_version("tuf"),
        "securesystemslib_version": dist_version("securesystemslib"),
        "spec_version": root.spec_version,
        "consistent_snapshot": root.consistent_snapshot,
        "expires": "2099-01-01T00:00:00Z",
        "keys": keys,
        "roles": roles,
        "delegation_order": [r for r in targets.delegations.roles],
        "delegations": delegations,
        "targets": all_targets,
        "snapshot_meta": {n: m.to_dict() for n, m in snapshot.meta.items()},
        "timestamp_meta": {"snapshot.json": timestamp.snapshot_meta.to_dict()},
    }


if __name__ == "__main__":
    sys.exit(main())
