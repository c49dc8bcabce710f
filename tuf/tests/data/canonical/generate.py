#!/usr/bin/env python3
"""Write vectors.json: canonical JSON test vectors produced by securesystemslib.

Each vector holds a piece of JSON text ("input"). The expected canonical form is
securesystemslib.formats.encode_canonical(json.loads(input)) encoded as UTF-8,
stored as lowercase hex in "canonical_hex" (hex, because the canonical form may
contain raw control characters and arbitrary UTF-8). Where securesystemslib
refuses the value (floats, lone surrogates that cannot be encoded as UTF-8) the
vector carries "error": true instead.

Run with the project venv (see scripts/python-env):

    target/venv/bin/python tuf/tests/data/canonical/generate.py

The output is deterministic: the same securesystemslib version always writes
byte-identical vectors.json.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

from securesystemslib import exceptions as sslib_exceptions
from securesystemslib.formats import encode_canonical

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vectors.json")

# Each entry: (name, JSON text, optional check on the parsed value). The checks
# guard the intent of a vector (e.g. that two look-alike keys really are two
# keys) so that an editing slip cannot silently weaken it.
Check = Callable[[Any], bool]
VECTORS: list[tuple[str, str, Check | None]] = []


def vector(name: str, text: str, check: Check | None = None) -> None:
    VECTORS.append((name, text, check))


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * (depth - 1) + '{"z":null}' + "}" * (depth - 1)


def nested_mixed(pairs: int) -> str:
    return '{"k":[' * pairs + "1" + "]}" * pairs


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


# --- structure and literals -------------------------------------------------
vector("empty-object", "{}")
vector("empty-array", "[]")
vector(
    "nested-empty",
    '{"e":{"f":{}},"d":[[]],"c":[{}],"b":[],"a":{}}',
)
vector("top-level-string", '"hello"')
vector("top-level-integer", "42")
vector("top-level-true", "true")
vector("top-level-null", "null")
vector("literals-in-object", '{"t":true,"f":false,"n":null}')
vector("literals-in-array", "[true,false,null,[true],[null]]")
vector(
    "whitespace-everywhere",
    ' \n\t { "b" :\t[ 1 ,\n 2 ] ,\r\n  "a"  : {   } , "c" : [ ] }  \n',
)
vector("array-order-preserved", '[3,1,2,"b","a",{"z":1,"a":2}]')
vector(
    "arrays-of-objects-sorted-inside",
    '[{"b":1,"a":2},{"d":[{"z":0,"y":1}],"c":[]}]',
)

# --- key ordering -----------------------------------------------------------
vector("key-order-basic", '{"b":1,"a":2,"c":3}')
vector("key-order-ascii-classes", '{"a":1,"B":2,"_":3,"0":4,"~":5,"A":6,"[":7}')
vector("key-order-numeric-strings", '{"10":1,"9":2,"1":3,"100":4,"-1":5}')
vector("key-order-prefixes", '{"ab":1,"a":2,"abc":3,"":4,"b":5}')
vector(
    "key-order-space-quote-backslash",
    r'{"a\"b":1,"a b":2,"a":3,"a!":4,"a#":5,"a\\b":6,"a]":7,"a[":8,"a\\":9,"a\"":10}',
    lambda v: len(v) == 10,
)
vector(
    "key-order-control-characters",
    r'{"a\u0000":1,"a":2,"a\n":3,"a\u001f":4," ":5,"\t":6,"a\u007f":7}',
    lambda v: len(v) == 7,
)
vector(
    "key-order-non-ascii-raw",
    '{"ü":1,"é":2,"z":3,"日本":4,"中文":5,"Ω":6,"e":7}',
)
vector(
    "key-order-non-ascii-escaped",
    r'{"\u00fc":1,"\u00e9":2,"z":3,"\u65e5\u672c":4,"\u4e2d\u6587":5,"\u03a9":6,"e":7}',
)
# U+FF61 sorts before U+1F600 by code point (and by UTF-8 bytes), but after it
# by UTF-16 code units (0xFF61 > 0xD83D). securesystemslib sorts by code point.
vector(
    "key-order-supplementary-vs-bmp-escaped",
    r'{"\ud83d\ude00":1,"\uff61":2,"\ue000":3,"\uffff":4,"a":5,"\ud7ff":6}',
    lambda v: len(v) == 6,
)
vector(
    "key-order-supplementary-vs-bmp-raw",
    '{"\U0001F600":"grin","\uFF61":"halfwidth stop","\uFFFD":"replacement"}',
)
vector(
    "key-order-several-emoji",
    r'{"\ud83d\ude01":1,"\ud83d\ude00":2,"\ud83c\udf89":3,"\ud800\udc00":4,"\udbff\udfff":5}',
)
vector(
    "key-order-long-common-prefix",
    '{"' + "a" * 99 + 'b":1,"' + "a" * 100 + '":2,"' + "a" * 99 + '":3}',
)

# --- Unicode normalisation must not happen ------------------------------------
vector(
    "nfc-nfd-values",
    r'["\u00e9","e\u0301","\u00c5","A\u030a","\u212b"]',
    lambda v: len(set(v)) == 5,
)
vector(
    "nfc-nfd-two-keys-escaped",
    r'{"\u00e9":"nfc","e\u0301":"nfd"}',
    lambda v: len(v) == 2,
)
vector(
    "nfc-nfd-two-keys-raw",
    '{"caf\u00e9":"nfc","cafe\u0301":"nfd"}',
    lambda v: len(v) == 2,
)
vector(
    "angstrom-three-keys",
    r'{"\u212b":1,"\u00c5":2,"A\u030a":3}',
    lambda v: len(v) == 3,
)
vector(
    "nfc-nfd-nested",
    r'{"outer":{"\u00fc":["\u00fc"],"u\u0308":["u\u0308"]}}',
    lambda v: len(v["outer"]) == 2,
)

# --- strings ------------------------------------------------------------------
vector(
    "string-quote-backslash-slash",
    r'{"s":"quote \" backslash \\ slash \/ done"}',
)
vector("string-only-escapes", r'["\"","\\","\/","\\\"","\"\\"]')
vector(
    "string-short-escapes",
    r'["\n","\t","\r","\b","\f","line1\nline2\ttab"]',
)
vector(
    "string-all-c0-controls",
    '"' + "".join("\\u%04x" % c for c in range(0x20)) + '"',
    lambda v: len(v) == 32,
)
vector("string-nul-inside", r'{"k":"before\u0000after"}')
vector(
    "string-del-c1-separators",
    r'["\u007f","\u0080","\u009f","\u00a0","\u2028","\u2029","\ufeff","\ufffe"]',
)
vector("string-uppercase-hex-escapes", r'"\u00E9\u00C9\u4E2D\uFF61"')
vector("string-escaped-ascii", r'"\u0041\u0062\u0063\u0020\u007e"')
vector(
    "string-surrogate-pairs",
    r'{"emoji":"\ud83d\ude00 and \ud83c\udf89","max":"\udbff\udfff"}',
)
vector("string-raw-utf8", '"naïve café 日本語 😀 Ωμέγα"')
vector("string-lone-high-surrogate", r'"\ud800"')
vector("string-lone-low-surrogate-in-key", r'{"\udc00":1}')

# --- nesting --------------------------------------------------------------------
vector("deep-arrays-100", nested_arrays(100), lambda v: depth_of(v) == 100)
vector("deep-objects-100", nested_objects(100), lambda v: depth_of(v) == 100)
vector("deep-mixed-100", nested_mixed(50), lambda v: depth_of(v) == 100)

# --- integers -------------------------------------------------------------------
vector("int-zero-and-signs", "[0,-0,1,-1,-10,10]")
vector("int-negative-zero", "-0")
vector("int-2pow53-plus-1", str(2**53 + 1))
vector("int-i64-bounds", "[%d,%d]" % (2**63 - 1, -(2**63)))
vector("int-2pow63", str(2**63))
vector("int-minus-2pow63-minus-1", str(-(2**63) - 1))
vector("int-u64-bounds", "[%d,%d]" % (2**64 - 1, 2**64))
vector("int-10pow40", str(10**40))
vector("int-minus-10pow40", str(-(10**40)))
vector("int-in-object", '{"length":1234,"version":2147483648,"neg":-2147483649}')

# --- non-integers: securesystemslib refuses them ----------------------------------
vector("float-one-point-zero", "1.0")
vector("float-fraction", "1.5")
vector("float-negative-zero", "-0.0")
vector("float-exponent", "1e3")
vector("float-exponent-signed", "[2E+2,1E-2]")
vector("float-exponent-fraction", "6.02214076e23")
vector("float-nested-in-object", '{"a":{"b":[1,2.5]}}')
vector("float-not-json-nan", "NaN")

# --- realistic TUF payloads -------------------------------------------------------
vector(
    "tuf-targets-signed",
    """{
  "_type": "targets",
  "spec_version": "1.0.34",
  "version": 7,
  "expires": "2099-01-01T00:00:00Z",
  "targets": {
    "v1.2.0": {
      "length": 1578,
      "hashes": {
        "sha256": "4bfd7f9e5b1d0c5c38c3f1bba8e3f1b39c2ca0d7a2a7d9b6c5e4f3a2b1c0d9e8"
      },
      "custom": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "annotations": {"org.opencontainers.image.source": "https:\\/\\/example.com\\/app"}
      }
    },
    "latest": {
      "hashes": {"sha256": "4bfd7f9e5b1d0c5c38c3f1bba8e3f1b39c2ca0d7a2a7d9b6c5e4f3a2b1c0d9e8"},
      "length": 1578
    },
    "sha256:0b8e1a4c5f3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f": {
      "length": 529,
      "hashes": {"sha256": "0b8e1a4c5f3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f"}
    }
  },
  "delegations": {
    "keys": {
      "59a4df8af818e9ed7abe0764c0b47b4240952aa0d179b5b78346c470ac30278d": {
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": {"public": "edcd0a32a07dce33f7c7873aaffbff36d20ea30787574ead335eefd337e4dacd"}
      },
      "1e8a0bfb1a7c2a7fa5cf0b8b4a9ad3c6e6f4a7c4e2b9d0f3b1e2a4c6d8e0f2a4": {
        "keytype": "ecdsa",
        "scheme": "ecdsa-sha2-nistp256",
        "keyval": {"public": "-----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcDjD8q1Cq4iZ6nq7y2m0b0d5WwQ7\\n7m1xv0j3p8x9u1v2w3y4z5A6B7C8D9E0F1G2H3I4J5K6L7M8N9O0P1Q2R3S4T5U6V7==\\n-----END PUBLIC KEY-----\\n"}
      }
    },
    "roles": [
      {
        "name": "releases",
        "keyids": ["1e8a0bfb1a7c2a7fa5cf0b8b4a9ad3c6e6f4a7c4e2b9d0f3b1e2a4c6d8e0f2a4"],
        "threshold": 1,
        "terminating": true,
        "paths": ["v*"]
      },
      {
        "name": "nightly",
        "keyids": ["59a4df8af818e9ed7abe0764c0b47b4240952aa0d179b5b78346c470ac30278d"],
        "threshold": 1,
        "terminating": false,
        "path_hash_prefixes": ["8f", "a0"]
      }
    ]
  },
  "x-vouch-unknown-field": {"kept": [1, "two", null]}
}""",
)
vector(
    "tuf-signature-envelope",
    """{"signatures": [{"keyid": "59a4df8af818e9ed7abe0764c0b47b4240952aa0d179b5b78346c470ac30278d",
      "sig": "e4f0"}],
 "signed": {"_type": "timestamp", "spec_version": "1.0.34", "version": 12,
  "expires": "2099-01-01T00:00:00Z",
  "meta": {"snapshot.json": {"version": 12, "length": 815,
   "hashes": {"sha256": "c2a7d9b6c5e4f3a2b1c0d9e84bfd7f9e5b1d0c5c38c3f1bba8e3f1b39c2ca0d7"}}}}}""",
)


def build() -> list[dict[str, Any]]:
    names: set[str] = set()
    out: list[dict[str, Any]] = []
    for name, text, check in VECTORS:
        if name in names:
            raise SystemExit(f"duplicate vector name {name!r}")
        names.add(name)

        value = json.loads(text)
        if check is not None and not check(value):
            raise SystemExit(f"vector {name!r} does not parse to what it is meant to test")

        entry: dict[str, Any] = {"name": name, "input": text}
        try:
            canonical = encode_canonical(value).encode("utf-8")
        except (sslib_exceptions.FormatError, UnicodeEncodeError):
            entry["error"] = True
        else:
            entry["canonical_hex"] = canonical.hex()
        out.append(entry)
    return out


def main() -> int:
    vectors = build()
    data = json.dumps(vectors, indent=2, ensure_ascii=True) + "\n"
    with open(OUT, "w", encoding="ascii", newline="\n") as f:
        f.write(data)
    errors = sum(1 for v in vectors if v.get("error"))
    print(f"wrote {len(vectors)} vectors ({errors} expected errors) to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
