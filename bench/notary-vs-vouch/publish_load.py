#!/usr/bin/env python3
"""Publish load for a TUF server, measured at the publish request alone.

Two steps, so that what is timed is the server storing publishes and nothing else (no client
process start-up, key generation, passphrase derivation or signing):

  capture  A recording proxy in front of a server. Every request is passed on, except a
           publish (POST .../_trust/tuf/), which is written to a file and answered 200 without
           reaching the server. A client (vouch's bench_publish, `notary publish`) run through
           it leaves one signed publish per repository on disk, while the requests it makes
           first (the online keys, notary's root lookup) did reach the server, so the server
           is ready to accept the recorded publish.
  replay   Sends the recorded publishes to the server from CONCURRENCY threads, each over its
           own keep-alive connection, each publish once, and prints one line of JSON (no spaces):
           publishes, failures, wall seconds, publishes per second, p50 and p99 latency (ms).

Standard library only. Usage:
  publish_load.py capture LISTEN_PORT UPSTREAM_URL OUT_DIR   (port 0: any; prints
                                                          "listening PORT" when ready)
  publish_load.py replay UPSTREAM_URL DIR CONCURRENCY
"""

import http.client
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

# Request headers a replayed publish carries; the others belong to the recording connection.
KEPT_HEADERS = ("Content-Type", "Authorization")
# Hop-by-hop headers not passed on by the proxy.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def is_publish(method, path):
    return method == "POST" and urllib.parse.urlsplit(path).path.endswith("/_trust/tuf/")


def capture(listen_port, upstream, out_dir):
    up = urllib.parse.urlsplit(upstream)
    os.makedirs(out_dir, exist_ok=True)
    counter = iter(range(1 << 62))
    lock = threading.Lock()

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if is_publish(self.command, self.path):
                with lock:
                    n = next(counter)
                record = {
                    "path": self.path,
                    "headers": {h: self.headers[h] for h in KEPT_HEADERS if self.headers[h]},
                }
                name = os.path.join(out_dir, "%06d" % n)
                with open(name + ".body", "wb") as f:
                    f.write(body)
                with open(name + ".json", "w") as f:
                    json.dump(record, f)
                self.reply(200, [("Content-Type", "application/json")], b"{}")
                return
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            headers["Host"] = up.netloc
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS]
            self.reply(resp.status, kept, data)

        def reply(self, status, headers, body):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(listen_port)), Proxy)
    server.daemon_threads = True
    print("listening", server.server_address[1], flush=True)
    server.serve_forever()


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def replay(upstream, in_dir, concurrency):
    up = urllib.parse.urlsplit(upstream)
    names = sorted(n[:-5] for n in os.listdir(in_dir) if n.endswith(".json"))
    work = []
    for name in names:
        with open(os.path.join(in_dir, name + ".json")) as f:
            record = json.load(f)
        with open(os.path.join(in_dir, name + ".body"), "rb") as f:
            work.append((record["path"], record["headers"], f.read()))
    shares = [work[i::concurrency] for i in range(concurrency)]
    latencies, failures, lock = [], [], threading.Lock()
    start = threading.Barrier(concurrency + 1)

    def publisher(share):
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        mine, bad = [], []
        start.wait()
        for path, headers, body in share:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                text = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
                status, text = 0, str(e).encode()
            elapsed = time.perf_counter() - t0
            if 200 <= status < 300:
                mine.append(elapsed)
            else:
                bad.append("%s %d %s" % (path, status, text[:200].decode("utf-8", "replace")))
        conn.close()
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=publisher, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    for line in failures[:5]:
        print("failed: " + line, file=sys.stderr)
    print(json.dumps({
        "publishes": len(latencies),
        "failures": len(failures),
        "seconds": round(wall, 3),
        "per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }, separators=(",", ":")))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "capture":
        capture(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 5 and sys.argv[1] == "replay":
        replay(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
