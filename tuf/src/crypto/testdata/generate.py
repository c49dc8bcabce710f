#!/usr/bin/env python3
"""Regenerates the interop fixtures used by the unit tests in `tuf/src/crypto/`.

Requires python `cryptography` (tested with 48.0). Run from this directory:

    python3 generate.py

Every run makes fresh keys, so all files below change together. Files written:

- message.txt                 the message every signature below covers
- rsa_pss_sha256.pub.pem      2048-bit RSA public key, SubjectPublicKeyInfo PEM
- rsa_pss_sha256.sig.hex      RSASSA-PSS, MGF1-SHA256, salt length 32 (the digest length)
- py_ed25519.enc.pem          encrypted PKCS#8 (BestAvailableEncryption)
- py_ed25519.pub.hex          its public key as TUF writes it (hex of the raw 32 bytes)
- py_ed25519.sig.hex          its signature over message.txt
- py_ecdsa_p256.enc.pem       encrypted PKCS#8 (BestAvailableEncryption)
- py_ecdsa_p256.pub.pem       its public key as TUF writes it (SubjectPublicKeyInfo PEM)
- py_ecdsa_p256.sig.hex       its DER signature (ECDSA, SHA-256) over message.txt

The encrypted keys use the passphrase below; the tests use the same constant.
"""

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

PASSPHRASE = b"vouch-test-passphrase"
MESSAGE = b'{"_type":"targets","spec_version":"1.0.34","version":1}\n'


def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(name, mode) as f:
        f.write(data)


def spki_pem(public_key):
    return public_key.public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def encrypted_pkcs8(private_key):
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )


write("message.txt", MESSAGE)

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
write("rsa_pss_sha256.pub.pem", spki_pem(rsa_key.public_key()))
write("rsa_pss_sha256.sig.hex", rsa_key.sign(MESSAGE, pss, hashes.SHA256()).hex() + "\n")

ed_key = ed25519.Ed25519PrivateKey.generate()
ed_public = ed_key.public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw
)
write("py_ed25519.enc.pem", encrypted_pkcs8(ed_key))
write("py_ed25519.pub.hex", ed_public.hex() + "\n")
write("py_ed25519.sig.hex", ed_key.sign(MESSAGE).hex() + "\n")

ec_key = ec.generate_private_key(ec.SECP256R1())
write("py_ecdsa_p256.enc.pem", encrypted_pkcs8(ec_key))
write("py_ecdsa_p256.pub.pem", spki_pem(ec_key.public_key()))
write("py_ecdsa_p256.sig.hex", ec_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256())).hex() + "\n")
