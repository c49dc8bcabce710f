#!/usr/bin/env python3
"""Write a repository's root and targets metadata with python-tuf's Metadata API.

The snapshot and timestamp roles are assigned to a vouch server's online keys,
so the server signs those two roles itself once root and targets are published.

Usage:

    python write_repo.py init OUT_DIR --timestamp-key FILE --snapshot-key FILE
        [--root-key-type TYPE] [--targets-key-type TYPE]
        [--annotation TEXT] [--target NAME=LENGTH:SHA256 ...]
    python write_repo.py targets OUT_DIR --version N
        [--annotation TEXT] [--target NAME=LENGTH:SHA256 ...]

init generates a root key and a targets key (TYPE: ed25519, the default,
ecdsa for ecdsa-sha2-nistp256, or rsa for rsassa-pss-sha256; kept as PEM in
OUT_DIR/keys/), and writes OUT_DIR/1.root.json (version 1, threshold 1 for
every role, the server's keys for snapshot and timestamp) and
OUT_DIR/1.targets.json (version 1, the given targets). FILE holds the key
object exactly as the server's GET .../timestamp.key or .../snapshot.key
returned it; its key id is the SHA-256 of its canonical JSON.

With --annotation, every target carries
custom = {"annotations": {"org.example.note": TEXT}}.

targets re-signs the targets role with the key from an earlier init and writes
OUT_DIR/N.targets.json with version N and the given targets.

Metadata is written with python-tuf's JSONSerializer at its defaults
(indented, not canonical JSON), so the server has to keep the exact bytes it
receives: re-serializing them would change every hash of them.

On success prints one JSON line naming what was written and the key ids used:

    {"written": ["1.root.json", "1.targets.json"],
     "keyids": {"root": "...", "targets": "...", "snapshot": "...", "timestamp": "..."}}

On any error prints {"error": "..."} and exits 1.
"""

import argparse
import hashlib
import json
import os
import sys
import traceback
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Key, Metadata, Root, TargetFile, Targets
from tuf.api.serialization.json import JSONSerializer

EXPIRES = datetime(2099, 1, 1, tzinfo=timezone.utc)
KEY_TYPES = ["ed25519", "ecdsa", "rsa"]


def server_key(path):
    """The key object from a .key endpoint, with its key id computed as vouch does."""
    with open(path, "rb") as f:
        obj = json.loads(f.read())
    keyid = hashlib.sha256(encode_canonical(obj).encode("utf-8")).hexdigest()
    # Key.from_dict consumes the dict it is given.
    return Key.from_dict(keyid, dict(obj))


def generate(keytype):
    if keytype == "ed25519":
        return Ed25519PrivateKey.generate()
    if keytype == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if keytype == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"unknown key type {keytype!r}")


def new_signer(out_dir, name, keytype):
    """A fresh signer whose private key is kept in OUT_DIR/keys/NAME.pem."""
    private = generate(keytype)
    keys_dir = os.path.join(out_dir, "keys")
    os.makedirs(keys_dir, exist_ok=True)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = os.path.join(keys_dir, f"{name}.pem")
    with open(path, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def load_signer(out_dir, name):
    with open(os.path.join(out_dir, "keys", f"{name}.pem"), "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def parse_target(spec, annotation):
    """NAME=LENGTH:SHA256 -> (NAME, TargetFile)."""
    name, sep, rest = spec.partition("=")
    length, sep2, sha256 = rest.partition(":")
    if not name or not sep or not sep2:
        raise ValueError(f"--target {spec!r}: expected NAME=LENGTH:SHA256")
    extra = None
    if annotation is not None:
        extra = {"custom": {"annotations": {"org.example.note": annotation}}}
    return name, TargetFile(int(length), {"sha256": sha256}, name, extra)


def targets_metadata(version, specs, signer, annotation):
    targets = Targets(version=version, expires=EXPIRES)
    for spec in specs:
        name, target = parse_target(spec, annotation)
        targets.targets[name] = target
    md = Metadata(targets)
    md.sign(signer)
    return md


def write(out_dir, name, md):
    # JSONSerializer() with its defaults: indented, sorted keys, not canonical JSON.
    # (Metadata.to_bytes() without a serializer would write compact JSON.)
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(md.to_bytes(JSONSerializer()))
    return name


def init(args):
    os.makedirs(args.out_dir, exist_ok=True)
    root_signer = new_signer(args.out_dir, "root", args.root_key_type)
    targets_signer = new_signer(args.out_dir, "targets", args.targets_key_type)
    timestamp_key = server_key(args.timestamp_key)
    snapshot_key = server_key(args.snapshot_key)

    root = Root(version=1, expires=EXPIRES, consistent_snapshot=True)
    root.add_key(root_signer.public_key, Root.type)
    root.add_key(targets_signer.public_key, Targets.type)
    root.add_key(snapshot_key, "snapshot")
    root.add_key(timestamp_key, "timestamp")
    root_md = Metadata(root)
    root_md.sign(root_signer)

    targets_md = targets_metadata(1, args.target, targets_signer, args.annotation)
    written = [
        write(args.out_dir, "1.root.json", root_md),
        write(args.out_dir, "1.targets.json", targets_md),
    ]
    return {
        "written": written,
        "keyids": {
            "root": root_signer.public_key.keyid,
            "targets": targets_signer.public_key.keyid,
            "snapshot": snapshot_key.keyid,
            "timestamp": timestamp_key.keyid,
        },
    }


def resign_targets(args):
    signer = load_signer(args.out_dir, "targets")
    md = targets_metadata(args.version, args.target, signer, args.annotation)
    written = [write(args.out_dir, f"{args.version}.targets.json", md)]
    return {"written": written, "keyids": {"targets": signer.public_key.keyid}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)

    p_init = sub.add_parser("init")
    p_init.add_argument("out_dir")
    p_init.add_argument("--timestamp-key", required=True)
    p_init.add_argument("--snapshot-key", required=True)
    p_init.add_argument("--root-key-type", choices=KEY_TYPES, default="ed25519")
    p_init.add_argument("--targets-key-type", choices=KEY_TYPES, default="ed25519")
    p_init.add_argument("--annotation", default=None)
    p_init.add_argument("--target", action="append", default=[])

    p_targets = sub.add_parser("targets")
    p_targets.add_argument("out_dir")
    p_targets.add_argument("--version", type=int, required=True)
    p_targets.add_argument("--annotation", default=None)
    p_targets.add_argument("--target", action="append", default=[])

    args = parser.parse_args()
    try:
        out = init(args) if args.mode == "init" else resign_targets(args)
    except Exception as e:  # every failure is reported the same way
        traceback.print_exc(file=sys.stderr)
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
