"""A stand-in OCI registry for cli.sh: answers HEAD (and GET) of /v2/REPO/manifests/TAG for
any tag, with the digest and length that cli.sh gives the notary client for the same tag.

It lets one `vouch sign IMAGE…` sign thousands of tags in one publish (with --digest only one
image may be given), so the earlier tags of a large repository are built in bulk. For the tag
`tag-N` of REPO the digest is sha256("manifest of GUN:tag-N") with GUN = "bench/" + the last
path segment of REPO, and the length is 1000 + N; no Content-Type is sent, so the targets carry
no media type, like `notary addhash` writes them.

Usage: python3 stub_registry.py PORT   (listens on 127.0.0.1 only)
"""

import hashlib
import http.server
import re
import sys

MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, with_body):
        m = MANIFEST.match(self.path)
        tag = m and re.fullmatch(r"tag-(\d+)", m.group("ref"))
        if not tag:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        gun = "bench/" + m.group("repo").rsplit("/", 1)[-1]
        n = int(tag.group(1))
        digest = hashlib.sha256(f"manifest of {gun}:tag-{n}".encode()).hexdigest()
        length = 1000 + n
        self.send_response(200)
        self.send_header("Docker-Content-Digest", "sha256:" + digest)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if with_body:
            # Only HEAD is expected; a GET gets a body whose digest will not match, and fails.
            self.wfile.write(b" " * length)

    def do_HEAD(self):
        self.answer(False)

    def do_GET(self):
        self.answer(True)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.serve_forever()
