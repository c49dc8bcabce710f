#!/bin/sh
# Regenerates notary_root.key: a root key written by the notary 0.7 client (Debian's
# `notary` package), encrypted with the passphrase "rootpass". Its file name in notary's
# trust directory is its key id, recorded in notary_root.keyid.
set -e
dir=$(mktemp -d)
NOTARY_ROOT_PASSPHRASE=rootpass notary -d "$dir" key generate ecdsa --role root
file=$(ls "$dir"/private/*.key)
cp "$file" notary_root.key
basename "$file" .key > notary_root.keyid
rm -rf "$dir"
