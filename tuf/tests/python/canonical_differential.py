#!/usr/bin/env python3
"""Generate random JSON documents and their canonical form by securesystemslib.

Differential testing of vouch's canonical JSON (tuf/tests/canonical_differential.rs):
each case is a JSON text written with random whitespace, random escaping of every
character (raw, \\uXXXX, the short escapes), random key order and a mix of
strings over awkward alphabets (control characters, quotes, backslashes, U+2028,
BOM, combining characters, astral characters as raw UTF-8 or surrogate pairs,
the occasional lone surrogate), integers from 0 to far beyond 64 bits (and
"-0"), nested arrays and objects; some cases are invalid on purpose (floats,
exponents, leading zeros, raw control characters, NaN, trailing commas).

For each case it prints one line of JSON:
    {"input_hex": HEX, "canonical_hex": HEX or null}
where canonical_hex is securesystemslib.formats.encode_canonical(json.loads(text))
encoded as UTF-8, or null when either step refuses the text. Object keys are
distinct after decoding: vouch refuses duplicate keys by design (tested on its
own), while Python's json keeps the last.

    canonical_differential.py --count N --seed S
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from securesystemslib.formats import encode_canonical

AWKWARD = (
    list("abcxyzABC019 _-./:@")
    + ['"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x01", "\x1f", "\x7f"]
    + ["é", "e\u0301", "Å", "A\u030a", "€", "\u2028", "\u2029", "\ufeff", "\uffff"]
    + ["😀", "𝄞", "\U0010ffff"]
)
SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f",
         "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class Gen:
    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def ws(self) -> str:
        return self.r.choice(["", "", "", " ", "\n", "\t", "  \r\n "])

    def raw_string(self) -> str:
        n = self.r.choice([0, 1, 2, 3, 5, 8, 13])
        return "".join(self.r.choice(AWKWARD) for _ in range(n))

    def write_string(self, s: str) -> str:
        out = ['"']
        for ch in s:
            cp = ord(ch)
            style = self.r.random()
            if ch in SHORT and style < 0.4:
                out.append(SHORT[ch])
            elif cp < 0x20 or ch in ('"', "\\"):
                out.append(f"\\u{cp:04x}" if style < 0.7 else f"\\u{cp:04X}")
            elif cp > 0xFFFF and style < 0.5:
                v = cp - 0x10000
                hi, lo = 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)
                out.append(f"\\u{hi:04x}\\u{lo:04x}")
            elif cp > 0x7F and style < 0.3:
                out.append(f"\\u{cp:04x}")
            elif style < 0.05 and cp < 0x80:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(ch)
        if self.r.random() < 0.02:
            out.append(self.r.choice(["\\ud800", "\\udfff", "\\udc00\\ud800"]))
        out.append('"')
        return "".join(out)

    def integer(self) -> str:
        pick = self.r.random()
        if pick < 0.4:
            return str(self.r.randint(-1000, 1000))
        if pick < 0.7:
            return str(self.r.randint(-(2**63), 2**64))
        if pick < 0.9:
            return str(self.r.randint(-(10**38), 10**38))
        return "-0"

    def value(self, depth: int) -> str:
        kinds = ["null", "bool", "int", "str", "str"]
        if depth < 5:
            kinds += ["arr", "obj", "obj"]
        kind = self.r.choice(kinds)
        w = self.ws
        if kind == "null":
            return "null"
        if kind == "bool":
            return self.r.choice(["true", "false"])
        if kind == "int":
            return self.integer()
        if kind == "str":
            return self.write_string(self.raw_string())
        if kind == "arr":
            items = [self.value(depth + 1) for _ in range(self.r.randint(0, 4))]
            return "[" + w() + ("," + w()).join(i + w() for i in items) + "]"
        keys: list[str] = []
        seen: set[str] = set()
        for _ in range(self.r.randint(0, 5)):
            k = self.raw_string()
            if k not in seen:
                seen.add(k)
                keys.append(k)
        self.r.shuffle(keys)
        members = [w() + self.write_string(k) + w() + ":" + w() + self.value(depth + 1) + w()
                   for k in keys]
        return "{" + ",".join(members) + w() + "}"

    def broken(self, text: str) -> str:
        """Make a valid document invalid in one of the ways JSON or TUF refuses."""
        return self.r.choice([
            lambda t: "[" + t + ",1.5]",
            lambda t: "[" + t + ",1e3]",
            lambda t: "[" + t + ",01]",
            lambda t: "[" + t + ",NaN]",
            lambda t: "[" + t + ",]",
            lambda t: '["a\x01b",' + t + "]",
            lambda t: t + " x",
            lambda t: "[" + t,
        ])(text)

    def case(self) -> str:
        text = self.value(0)
        if self.r.random() < 0.08:
            text = self.broken(text)
        return self.ws() + text + self.ws()


def expected(text: str) -> bytes | None:
    try:
        value = json.loads(text)
        return encode_canonical(value).encode("utf-8")
    except Exception:  # noqa: BLE001 - any refusal counts as a refusal
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    gen = Gen(random.Random(args.seed))
    out = sys.stdout
    for _ in range(args.count):
        text = gen.case()
        raw = text.encode("utf-8", "surrogatepass")
        want = expected(text)
        out.write(json.dumps({
            "input_hex": raw.hex(),
            "canonical_hex": None if want is None else want.hex(),
        }) + "\n")


if __name__ == "__main__":
    main()
