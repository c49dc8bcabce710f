"""Runs the Python verification of webhook deliveries that docs/events.md shows, on deliveries
a real server made: the block is taken from the document as written, so the document stays true.

Reads JSON on stdin: {"docs": PATH, "headers": {...}, "body": BASE64, "tampered": BASE64,
"public_key": "whpk_...", "secret": "whsec_..."}. Prints the event id when the delivery
verifies with the public key alone and with the secret alone, and the tampered body is refused
by both; exits non-zero otherwise.
"""
import base64
import json
import re
import sys
import time

req = json.load(sys.stdin)
text = open(req["docs"], encoding="utf-8").read()
blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify(" in b]
if len(blocks) != 1:
    sys.exit(f"expected one python block defining verify() in {req['docs']}, found {len(blocks)}")
namespace = {}
exec(blocks[0], namespace)
verify = namespace["verify"]

headers = req["headers"]
body = base64.b64decode(req["body"])
tampered = base64.b64decode(req["tampered"])
by_key = verify(headers, body, public_key=req["public_key"])
by_secret = verify(headers, body, secret=req["secret"])
assert by_key == by_secret, (by_key, by_secret)
for kind in ("public_key", "secret"):
    try:
        verify(headers, tampered, **{kind: req[kind]})
    except ValueError:
        continue
    sys.exit(f"a tampered body verified with the {kind}")
# A replay long after the fact is refused on its timestamp.
old = dict(headers, **{"webhook-timestamp": str(int(time.time()) - 3600)})
try:
    verify(old, body, public_key=req["public_key"])
    sys.exit("a stale timestamp was accepted")
except ValueError:
    pass
print(by_key["id"])
