"""Consumers of what vouch pushes outward during the soak: event streams, signed webhook
deliveries and the registry mirror, and their end-of-run checks. Imported by driver.py.

- One Server-Sent Events consumer per server (replicas "a", "b", the SQLite server "s")
  follows `GET /v2/_trust/events` of its own server and reconnects with `Last-Event-ID`
  whenever the connection ends (b or s is SIGKILLed, PostgreSQL stopped or out of disk).
- A receiver (`http.server` in a thread) takes the deliveries of one subscription per store
  (`/hook/pg` from the replicas, `/hook/sqlite` from s): it checks both Standard Webhooks
  signatures (the HMAC of the configured secret, the ed25519 key the server was given),
  dedupes by `webhook-id`, answers 500 to 5 % of first attempts, and is shut for the fault
  window `receiver-down`.
- The replicas mirror their repositories (named `127.0.0.1:PORT/soak/…`, the registry the
  soak starts) into `docker-registry`; at the end each live repository's `_vouch.trust`
  artifact must hold exactly what the server serves.

What "stored" means here is the changefeed (`GET /v2/_trust/changefeed`, read at the end from
the store) and the driver's own record of what it published: every event and delivery must
equal the changefeed entry of its id, every root and targets version an event names must be
one the driver sent, and every timestamp an event names of a repository never deleted must be
served by the store with that hash.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter, defaultdict

from cryptography.hazmat.primitives import serialization

# Stores and the servers of each; a consumer reads its own server only.
STORES = {"pg": ["a", "b"], "sqlite": ["s"]}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TRUST_TAG = "_vouch.trust"
FIRST_ATTEMPT_500 = 0.05  # fraction of first delivery attempts answered 500
TOLERANCE = 300  # seconds a delivery's webhook-timestamp may be off (docs/events.md)
CATCH_UP = 300  # seconds the end waits for streams, webhooks and the mirror to catch up (the
# mirror, behind a 600 s load on 2 shared cores, took 136 s)


def log(*a):
    print(f"[feeds {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def get(url, headers=None, timeout=20):
    """(status or 'conn-error', headers, body) of one GET."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path + (("?" + u.query) if u.query else ""), headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except (OSError, http.client.HTTPException) as e:
        return "conn-error", {}, str(e).encode()
    finally:
        conn.close()


def get_retried(url, headers=None, deadline=60):
    """A GET retried until it answers 200 or 404 (the store may be coming back)."""
    end = time.monotonic() + deadline
    while True:
        s, h, data = get(url, headers)
        if s in (200, 404) or time.monotonic() > end:
            return s, h, data
        time.sleep(1)


def repo_path(gun):
    """The repository path of a GUN on its registry (the GUN without its host)."""
    return gun.split("/", 1)[1]


# --- event streams ----------------------------------------------------------------------


class SseConsumer:
    """Follows one server's event stream, resuming from the last id it handled."""

    def __init__(self, name, proc, token):
        self.name = name
        self.proc = proc
        self.token = token
        self.events = []  # event dicts in the order received
        self.ids = set()
        self.last = None
        self.violations = []  # ids not strictly after the previous one
        self.connects = 0
        self.markers = 0  # id-only messages (positions)
        self.ends = Counter()  # why connections ended
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.connect_once()
            time.sleep(0.5)  # b and s are down for 5 s at a time; PostgreSQL for 12 s

    def connect_once(self):
        u = urllib.parse.urlsplit(self.proc.url)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        path = "/v2/_trust/events"
        if self.last is None:
            path += "?after=0"  # the whole feed: the consumers start before any change
        else:
            headers["Last-Event-ID"] = str(self.last)
        # Keep-alives every 5 s (server.toml): 30 s of silence is a dead connection.
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            self.connects += 1
            if r.status != 200:
                self.ends[f"status {r.status}"] += 1
                r.read()
                time.sleep(1)
                return
            self.read_stream(r)
        except TimeoutError:
            self.ends["timeout"] += 1
        except (OSError, http.client.HTTPException) as e:
            self.ends[type(e).__name__] += 1
        except (ValueError, KeyError) as e:  # a malformed message: a finding, not a crash
            self.ends["malformed"] += 1
            with self.lock:
                self.violations.append(f"{self.name}: malformed message: {e}")
        finally:
            conn.close()

    def read_stream(self, r):
        eid, name, data = None, None, []
        while not self.stop.is_set():
            line = r.readline(1 << 20)
            if not line:
                self.ends["eof"] += 1
                return
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if name == "reconnect":
                    reason = json.loads("\n".join(data)).get("reason", "?")
                    self.ends[f"notice {reason}"] += 1
                elif eid is not None and data:
                    self.handle(int(eid), json.loads("\n".join(data)))
                elif eid is not None:
                    # An id without data: the stream's position (SSE sets the last event id
                    # and dispatches nothing); the server sends one when a stream starts.
                    self.position(int(eid))
                eid, name, data = None, None, []
            elif line.startswith(":"):
                continue  # keep-alive comment
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "id":
                    eid = value
                elif field == "event":
                    name = value
                elif field == "data":
                    data.append(value)

    def position(self, eid):
        with self.lock:
            self.markers += 1
            if self.last is not None and eid < self.last:
                self.violations.append(f"{self.name}: position {eid} after event {self.last}")
            else:
                self.last = eid

    def handle(self, eid, event):
        with self.lock:
            if event.get("id") != eid or (self.last is not None and eid <= self.last):
                self.violations.append(
                    f"{self.name}: id {eid} (data id {event.get('id')}) after {self.last}"
                    f"{' (a duplicate)' if eid in self.ids else ''}")
            self.ids.add(eid)
            self.events.append(event)
            if self.last is None or eid > self.last:
                self.last = eid

    def reconnects(self):
        return max(0, self.connects - 1)


# --- webhook receiver -------------------------------------------------------------------


class Endpoint:
    """What one subscription's path received."""

    def __init__(self, name, public_key):
        self.name = name
        self.public_key = public_key  # the ed25519 key the server signs with (pinned)
        self.attempts = 0
        self.failed_first = 0  # first attempts answered 500 on purpose
        self.rejected = []  # (reason, webhook-id)
        self.seen = set()  # webhook-ids that reached the receiver at all
        self.delivered = {}  # webhook-id -> event (answered 2xx)
        self.first_order = []  # event ids in the order first answered 2xx
        self.duplicates = 0  # a 2xx'd id delivered again
        self.dup_ids = Counter()  # event id -> times delivered again
        self.dup_first = self.dup_last = None  # monotonic seconds of the first and last
        self.retries = 0  # attempts at an id already seen but not yet answered 2xx


class Receiver:
    """The webhook receiver: one ThreadingHTTPServer, shut and opened again by the fault."""

    def __init__(self, port, secret, keys):
        self.port = port
        self.secret = base64.b64decode(secret.strip().removeprefix("whsec_"))
        self.endpoints = {n: Endpoint(n, k) for n, k in keys.items()}
        self.lock = threading.Lock()
        self.server = None
        self.down_windows = []  # (start, end) seconds of the fault
        self.rnd = random.Random(7)

    def open(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                status = receiver.handle(self.path, {k.lower(): v for k, v in self.headers.items()},
                                         body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def verify(self, ep, h, body):
        """The event of a delivery, or raises ValueError naming why it is refused."""
        msg_id, ts = h.get("webhook-id", ""), h.get("webhook-timestamp", "")
        if not ts.isdigit() or abs(time.time() - int(ts)) > TOLERANCE:
            raise ValueError(f"timestamp {ts!r}")
        signed = f"{msg_id}.{ts}.".encode() + body
        v1 = v1a = False
        for entry in h.get("webhook-signature", "").split():
            scheme, _, sig = entry.partition(",")
            try:
                raw = base64.b64decode(sig, validate=True)
            except ValueError:
                continue
            if scheme == "v1":
                mac = hmac.new(self.secret, signed, hashlib.sha256).digest()
                v1 = v1 or hmac.compare_digest(mac, raw)
            elif scheme == "v1a":
                try:
                    ep.public_key.verify(raw, signed)
                    v1a = True
                except Exception:
                    pass
        # Both must hold: the subscription has a secret, and the key is the one configured.
        if not v1:
            raise ValueError("no valid v1 (HMAC) signature")
        if not v1a:
            raise ValueError("no valid v1a (ed25519) signature")
        message = json.loads(body)
        event = message["data"]
        if msg_id != f"vouch-{event['id']}":
            raise ValueError(f"webhook-id {msg_id} for event {event['id']}")
        if message.get("type") != f"vouch.trust.{event['kind']}":
            raise ValueError(f"type {message.get('type')} for kind {event['kind']}")
        return event

    def handle(self, path, h, body):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        ep = self.endpoints.get(name)
        if ep is None:
            return 404
        with self.lock:
            ep.attempts += 1
            try:
                event = self.verify(ep, h, body)
            except (ValueError, KeyError, TypeError) as e:
                ep.rejected.append((str(e), h.get("webhook-id")))
                return 400
            msg_id = h["webhook-id"]
            first = msg_id not in ep.seen
            ep.seen.add(msg_id)
            if msg_id in ep.delivered:
                ep.duplicates += 1
                ep.dup_ids[ep.delivered[msg_id]["id"]] += 1
                ep.dup_last = time.monotonic()
                ep.dup_first = ep.dup_first or ep.dup_last
                return 204
            if not first:
                ep.retries += 1
            elif self.rnd.random() < FIRST_ATTEMPT_500:
                ep.failed_first += 1
                return 500
            ep.delivered[msg_id] = event
            ep.first_order.append(event["id"])
            return 204


# --- metrics ----------------------------------------------------------------------------

# vouch_read_cache_bytes is reported beside the RSS of the replicas: the mirror reads every
# changed repository from the server, and what the read cache holds is part of its memory.
METRIC = re.compile(r'^(vouch_mirror_pushes_total|vouch_mirror_lag|vouch_webhook_deliveries_total|'
                    r'vouch_events_sent_total|vouch_read_cache_bytes)(\{[^}]*\})?\s+(\S+)$')


def scrape(proc, token):
    """{(metric, labels): value} of the vouch metrics the feeds report, or None."""
    s, _, data = get(proc.url + "/metrics", {"Authorization": f"Bearer {token}"}, timeout=5)
    if s != 200:
        return None
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        m = METRIC.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


# --- the feeds as a whole ---------------------------------------------------------------


class Feeds:
    def __init__(self, st):
        cfg = st.cfg
        self.st = st
        self.token = cfg["feed_token"]
        self.consumers = {n: SseConsumer(n, st.procs[n], self.token) for n in ("a", "b", "s")}
        with open(cfg["webhook_secret_file"]) as f:
            secret = f.read()
        keys = {}
        for store, path in cfg["webhook_keys"].items():
            with open(path, "rb") as f:
                keys[store] = serialization.load_pem_private_key(f.read(), None).public_key()
        self.receiver = Receiver(cfg["receiver_port"], secret, keys)
        self.registry = st.procs["r"].url
        # (process, incarnation) -> last scrape: a killed server's counters start again at 0.
        self.scrapes = {}
        self.stop = threading.Event()

    def start(self):
        self.receiver.open()
        for c in self.consumers.values():
            threading.Thread(target=c.run, daemon=True).start()
        threading.Thread(target=self.scraper, daemon=True).start()

    def scraper(self):
        while not self.stop.is_set():
            for n in ("a", "b", "s"):
                p = self.st.procs[n]
                if p.alive():
                    m = scrape(p, self.token)
                    if m is not None:
                        self.scrapes[(n, p.starts)] = m
            self.stop.wait(3)

    def metric_sum(self, metric, servers, label_filter=""):
        """Sum over every incarnation of the servers of metric lines whose labels contain
        label_filter, by label string."""
        out = Counter()
        for (n, _), m in self.scrapes.items():
            if n in servers:
                for (name, labels), v in m.items():
                    if name == metric and label_filter in labels:
                        out[labels] += v
        return out


def start(st):
    st.feeds = Feeds(st)
    st.feeds.start()


def fault_receiver_down(st, i):
    """The webhook receiver unreachable (its port closed) for one fault window."""
    r = st.feeds.receiver
    t0 = time.monotonic()
    r.close()
    log("fault: webhook receiver down")
    time.sleep(st.cfg["hold"])
    r.open()
    r.down_windows.append((t0, time.monotonic()))
    log("fault: webhook receiver up")


# --- end of run -------------------------------------------------------------------------


def changefeed(st, store):
    """Every changefeed entry of a store, oldest first, as event-like dicts; None when the
    store does not answer."""
    server = STORES[store][0]
    url = st.procs[server].url
    out, after = [], 0
    while True:
        s, _, data = get_retried(f"{url}/v2/_trust/changefeed?change_id={after}&records=100",
                                 {"Authorization": f"Bearer {st.feeds.token}"})
        if s != 200:
            return None
        records = json.loads(data)["records"]
        for rec in records:
            out.append({"id": int(rec["ID"]), "gun": rec["GUN"], "version": rec["Version"],
                        "sha256": rec["SHA256"], "kind": rec["Category"]})
        if len(records) < 100:
            return out
        after = out[-1]["id"]


def same_entry(event, entry):
    return (event.get("gun"), event.get("version"), event.get("sha256"), event.get("kind")) == \
        (entry["gun"], entry["version"], entry["sha256"], entry["kind"])


def ack_demand(st, store):
    """(gun, role, version) -> how many publishes acknowledged it (one per epoch): each needs
    an event of its own naming that role version."""
    demand = Counter()
    seen = set()
    for a in st.acks:
        if a["group"] == store and a["role"] in ("root", "targets"):
            key = (a["gun"], a["role"], a["version"], a["epoch"])
            if key not in seen:
                seen.add(key)
                demand[key[:3]] += 1
    return demand


def missing_acks(demand, events):
    """Acknowledged (gun, role, version)s with fewer distinct events naming them than
    publishes that wrote them."""
    supply = defaultdict(set)
    for e in events:
        for r in e.get("roles") or []:
            supply[(e["gun"], r["role"], r["version"])].add(e["id"])
    return [f"{g} {v}.{r}.json: {n} acknowledged, {len(supply[(g, r, v)])} event(s)"
            for (g, r, v), n in demand.items() if len(supply[(g, r, v)]) < n]


def coverage(st, feed, demand):
    """Per consumer and endpoint: ids of the changefeed not received, acks without an event,
    events differing from or absent from the changefeed."""
    by_id = {store: {e["id"]: e for e in entries} for store, entries in feed.items()}
    out = {}
    for store, servers in STORES.items():
        for n in servers:
            c = st.feeds.consumers[n]
            with c.lock:
                events = list(c.events)
            out[f"stream {n}"] = check_events(by_id[store], events, demand[store])
        ep = st.feeds.receiver.endpoints[store]
        with st.feeds.receiver.lock:
            events = list(ep.delivered.values())
        out[f"webhook {store}"] = check_events(by_id[store], events, demand[store])
    return out


def check_events(by_id, events, demand):
    got = {e["id"] for e in events}
    missing = sorted(set(by_id) - got)
    differ = [f"#{e['id']} {e.get('gun')} v{e.get('version')}: "
              f"{'not in the changefeed' if e['id'] not in by_id else 'differs from the changefeed'}"
              for e in events if e["id"] not in by_id or not same_entry(e, by_id[e["id"]])]
    return {"missing": missing, "missing-acks": missing_acks(demand, events), "differ": differ}


def caught_up(cov):
    return all(not v["missing"] and not v["missing-acks"] for v in cov.values())


def unstored(st, store, events):
    """Events naming a version never stored: a root or targets version the driver never sent
    for that repository, or (repositories never deleted) a timestamp the store does not serve
    with the event's hash."""
    sent = st.attempted
    live1 = {r.gun: r for r in st.repos if r.group == store and r.live and r.epoch == 1}
    bad, checked = [], 0
    for e in events:
        if e.get("kind") != "update":
            continue
        for r in e.get("roles") or []:
            if r["role"] in ("root", "targets") and (e["gun"], r["role"], r["version"]) not in sent:
                bad.append(f"#{e['id']} {e['gun']} {r['version']}.{r['role']}.json never sent")
        if e["gun"] in live1:
            server = random.choice(STORES[store])
            s, _, data = get_retried(st.url(server, e["gun"], f"{e['version']}.timestamp.json"))
            checked += 1
            if s != 200 or hashlib.sha256(data).hexdigest() != e["sha256"]:
                bad.append(f"#{e['id']} {e['gun']} {e['version']}.timestamp.json on {server}: {s}"
                           f"{' (other bytes)' if s == 200 else ''}")
    return bad, checked


# --- registry mirror --------------------------------------------------------------------


def artifact(registry, gun):
    """(manifest digest, manifest, {file name: bytes}) of the trust tag, or (status, None,
    reason) when there is no readable artifact. Layers are checked against size and digest."""
    path = repo_path(gun)
    s, h, data = get(f"{registry}/v2/{path}/manifests/{TRUST_TAG}", {"Accept": OCI_MANIFEST})
    if s != 200:
        return s, None, f"manifest: {s}"
    m = json.loads(data)
    files = {}
    for layer in m.get("layers", []):
        name = layer.get("annotations", {}).get("tuf.io/filename")
        if "data" in layer:
            b = base64.b64decode(layer["data"])
        else:
            s, _, b = get(f"{registry}/v2/{path}/blobs/{layer['digest']}")
            if s != 200:
                return s, None, f"blob {name}: {s}"
        if len(b) != layer["size"] or "sha256:" + hashlib.sha256(b).hexdigest() != layer["digest"]:
            return "bad-layer", None, f"{name}: size or digest differs"
        files[name] = b
    return h.get("docker-content-digest"), m, files


def expected_files(st, gun):
    """{file name: bytes} a trust artifact of gun must hold, read from replica a: every root
    version, timestamp.json, the current snapshot and targets by version."""
    def read(tail):
        s, _, data = get_retried(st.url("a", gun, tail))
        if s != 200:
            raise ValueError(f"{tail}: {s}")
        return data

    ts = read("timestamp.json")
    sv = json.loads(ts)["signed"]["meta"]["snapshot.json"]["version"]
    snap = read(f"{sv}.snapshot.json")
    tv = json.loads(snap)["signed"]["meta"]["targets.json"]["version"]
    rv = json.loads(read("root.json"))["signed"]["version"]
    out = {"timestamp.json": ts, f"{sv}.snapshot.json": snap,
           f"{tv}.targets.json": read(f"{tv}.targets.json")}
    for v in range(1, rv + 1):
        out[f"{v}.root.json"] = read(f"{v}.root.json")
    return out


def mirrored_repos(st):
    prefix = st.cfg["mirror_prefix"] + "/"
    return [r for r in st.repos if r.live and r.gun.startswith(prefix)]


def mirror_pending(st, repos):
    """The repositories whose tag does not hold the server's current timestamp yet."""
    out = []
    for r in repos:
        d, m, files = artifact(st.feeds.registry, r.gun)
        s, _, ts = get_retried(st.url("a", r.gun, "timestamp.json"))
        if m is None or s != 200 or files.get("timestamp.json") != ts:
            out.append(r)
    return out


def mirror_check(st, repos):
    """Each repository's artifact against the server: the same file set, byte for byte."""
    bad = []
    for r in repos:
        d, m, files = artifact(st.feeds.registry, r.gun)
        if m is None:
            bad.append(f"{r.gun}: {files}")
            continue
        try:
            want = expected_files(st, r.gun)
        except ValueError as e:
            bad.append(f"{r.gun}: server: {e}")
            continue
        if set(files) != set(want):
            bad.append(f"{r.gun}: artifact holds {sorted(files)}, server {sorted(want)}")
            continue
        for name, b in files.items():
            if b != want[name]:
                bad.append(f"{r.gun}: {name} differs from the server's")
        if m.get("annotations", {}).get("dev.vouch.trust.gun") != r.gun:
            bad.append(f"{r.gun}: artifact names {m.get('annotations', {}).get('dev.vouch.trust.gun')}")
    return bad


def cli_lookup(st, repos, n=3):
    """`vouch --source registry lookup` of the newest tag the driver signed, for n
    repositories: the CLI reads the registry copy alone (pinned to the first root, in an
    empty trust directory) and must print the signed digest. Returns (checked, failures)."""
    vouch = st.cfg.get("vouch_cli")
    host = st.cfg["mirror_prefix"].split("/", 1)[0]
    failures, checked = [], 0
    for r in random.sample(repos, min(n, len(repos))):
        tag = list(r.targets)[-1]
        want = "sha256:" + r.targets[tag].hashes["sha256"]
        with tempfile.TemporaryDirectory(prefix="soak-cli-") as d:
            root = os.path.join(d, "1.root.json")
            with open(root, "wb") as f:
                f.write(r.first_root)
            argv = [vouch, "--source", "registry", "--insecure-registry", host,
                    "--trust-dir", os.path.join(d, "trust"), "--trust-root", root,
                    "--output", "json", "lookup", f"{r.gun}:{tag}"]
            try:
                p = subprocess.run(argv, capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                failures.append(f"{r.gun}:{tag}: vouch lookup timed out")
                continue
        checked += 1
        try:
            got = json.loads(p.stdout).get("digest") if p.returncode == 0 else None
        except ValueError:
            got = None
        if got != want:
            failures.append(f"{r.gun}:{tag}: exit {p.returncode}, digest {got}, signed {want}: "
                            f"{p.stderr.decode('utf-8', 'replace')[:300]}")
    return checked, failures


def final_checks(st):
    """Waits (at most CATCH_UP seconds) for every stream, endpoint and the mirror to catch up
    with the store, then checks them. Returns a dict for report()."""
    f = st.feeds
    res = {}
    feed = {s: changefeed(st, s) for s in STORES}
    res["changefeed"] = {s: (len(v) if v is not None else None) for s, v in feed.items()}
    if any(v is None for v in feed.values()):
        res["error"] = "a store's changefeed could not be read"
        return res
    demand = {s: ack_demand(st, s) for s in STORES}
    repos = mirrored_repos(st)
    t0 = time.monotonic()
    deadline = t0 + CATCH_UP
    pending = repos
    while True:
        cov = coverage(st, feed, demand)
        pending = mirror_pending(st, pending)
        if (caught_up(cov) and not pending) or time.monotonic() > deadline:
            break
        time.sleep(2)
    res["waited"] = time.monotonic() - t0
    res["coverage"] = cov
    res["mirror-behind"] = [r.gun for r in pending]
    res["mirror-bad"] = mirror_check(st, [r for r in repos if r not in pending])
    res["mirror-repos"] = len(repos)
    res["mirror-recreated"] = sum(1 for r in repos if r.epoch > 1)
    res["cli-checked"], res["cli-failures"] = cli_lookup(st, [r for r in repos if r not in pending])
    res["unstored"], res["timestamps-checked"] = [], 0
    for store in STORES:
        by_id = {e["id"]: e for c in STORES[store] for e in f.consumers[c].events}
        for e in f.receiver.endpoints[store].delivered.values():
            by_id.setdefault(e["id"], e)
        bad, n = unstored(st, store, list(by_id.values()))
        res["unstored"] += bad
        res["timestamps-checked"] += n
    res["webhook-state"] = {}
    for store, servers in STORES.items():
        s, _, data = get_retried(st.procs[servers[0]].url + "/v2/_trust/webhooks",
                                 {"Authorization": f"Bearer {f.token}"})
        if s == 200:
            for sub in json.loads(data).get("subscriptions", []):
                res["webhook-state"][sub.get("name")] = {
                    k: sub.get(k) for k in ("status", "cursor", "lag", "attempts", "last_error")}
        else:
            res["webhook-state"][store] = f"GET /v2/_trust/webhooks: {s}"
    for n in ("a", "b", "s"):  # the last values before the checks end
        p = st.procs[n]
        if p.alive():
            m = scrape(p, f.token)
            if m is not None:
                f.scrapes[(n, p.starts)] = m
    f.stop.set()
    for c in f.consumers.values():
        c.stop.set()
    return res


def order_violations(ep):
    """Event ids first delivered (2xx) out of increasing order: deliveries are in order."""
    out = []
    for prev, cur in zip(ep.first_order, ep.first_order[1:]):
        if cur <= prev:
            out.append(f"{ep.name}: #{cur} first delivered after #{prev}")
    return out


def labels(text, drop=""):
    """'{a="x",b="y"}' as 'a=x b=y', without label drop."""
    pairs = re.findall(r'(\w+)="([^"]*)"', text)
    return " ".join(f"{k}={v}" for k, v in pairs if k != drop)


def report_rows(st, res):
    """Prints the feeds' rows of the summary table; returns False when a check failed."""
    f = st.feeds
    ok = True
    if "error" in res:
        print(f"| feeds | {res['error']} |")
        return False
    cov = res["coverage"]
    cf = res["changefeed"]
    print(f"| changefeed entries at the end | PostgreSQL {cf['pg']}, SQLite {cf['sqlite']}; streams, "
          f"webhooks and mirror caught up after {res['waited']:.0f} s (at most {CATCH_UP}) |")
    order = [v for c in f.consumers.values() for v in c.violations]
    print("| event streams: events, reconnects | " + ", ".join(
        f"{n} {len(c.events)} events, {c.reconnects()} reconnects" for n, c in f.consumers.items()) + " |")
    print(f"| event streams: ids not strictly increasing (duplicates included) | {len(order)} |")
    ok &= not order
    for kind in ("stream", "webhook"):
        miss = {k: v for k, v in cov.items() if k.startswith(kind)}
        n_missing = sum(len(v["missing"]) for v in miss.values())
        n_acks = sum(len(v["missing-acks"]) for v in miss.values())
        n_differ = sum(len(v["differ"]) for v in miss.values())
        label = "event streams" if kind == "stream" else "webhooks"
        print(f"| {label}: changefeed entries not received / acknowledged publishes without an event / "
              f"events not as in the changefeed | {n_missing} / {n_acks} / {n_differ} |")
        ok &= not (n_missing or n_acks or n_differ)
    print(f"| events naming a version never stored | {len(res['unstored'])} "
          f"({res['timestamps-checked']} timestamps of never-deleted repositories read back by version) |")
    ok &= not res["unstored"]
    r = f.receiver
    rejected = sum(len(ep.rejected) for ep in r.endpoints.values())
    worder = [v for ep in r.endpoints.values() for v in order_violations(ep)]
    print("| webhook deliveries | " + "; ".join(
        f"{n}: {ep.attempts} attempts received, {len(ep.delivered)} events delivered, "
        f"{ep.duplicates} duplicates, {ep.retries} retries, {ep.failed_first} first attempts answered 500"
        for n, ep in r.endpoints.items()) + f"; receiver down {len(r.down_windows)} times |")
    print(f"| webhook signatures refused / events first delivered out of order | {rejected} / {len(worder)} |")
    ok &= not rejected and not worder
    dead = [n for n, v in res["webhook-state"].items()
            if not isinstance(v, dict) or v.get("status") == "dead"]
    print("| webhook subscriptions at the end | " + ", ".join(
        f"{n}: {v['status']}, lag {v['lag']}" if isinstance(v, dict) else f"{n}: {v}"
        for n, v in res["webhook-state"].items()) + " |")
    ok &= not dead
    wd = f.metric_sum("vouch_webhook_deliveries_total", ("a", "b", "s"))
    print("| vouch_webhook_deliveries_total (every incarnation) | " +
          (", ".join(f"{labels(k)} {v:.0f}" for k, v in sorted(wd.items())) or "none") + " |")
    pushes = f.metric_sum("vouch_mirror_pushes_total", ("a", "b"))
    print("| vouch_mirror_pushes_total, a + b (every incarnation) | " +
          (", ".join(f"{labels(k, 'registry')} {v:.0f}" for k, v in sorted(pushes.items())) or "none") + " |")
    print(f"| registry mirror: live repositories behind / differing from the server | "
          f"{len(res['mirror-behind'])} / {len(res['mirror-bad'])} of {res['mirror-repos']} "
          f"({res['mirror-recreated']} re-created after a deletion) |")
    ok &= not res["mirror-behind"] and not res["mirror-bad"] and res["mirror-repos"] > 0
    print(f"| `vouch --source registry lookup` (registry copy alone, first root pinned) | "
          f"{res['cli-checked'] - len(res['cli-failures'])} of {res['cli-checked']} print the signed digest |")
    ok &= not res["cli-failures"] and res["cli-checked"] > 0
    return ok


def report_details(st, res):
    f = st.feeds
    lines = defaultdict(list)
    for c in f.consumers.values():
        lines["stream connections ended, by reason"].append(f"{c.name}: {dict(c.ends)}")
        lines["stream order violations"] += c.violations
    for k, v in res.get("coverage", {}).items():
        for what in ("missing", "missing-acks", "differ"):
            if v[what]:
                lines[f"{k}: {what}"] += [str(x) for x in v[what]]
    for ep in f.receiver.endpoints.values():
        lines["webhook signatures refused"] += [f"{ep.name}: {w} ({i})" for w, i in ep.rejected]
        lines["webhook order violations"] += order_violations(ep)
        if ep.dup_ids:
            span = ep.dup_last - ep.dup_first
            lines["webhook events delivered again (at least once allows it)"].append(
                f"{ep.name}: {ep.duplicates} over {span:.1f} s, by event id: " +
                ", ".join(f"#{i} {n}" for i, n in ep.dup_ids.most_common(5)))
    lines["events naming a version never stored"] += res.get("unstored", [])
    lines["mirror behind"] += res.get("mirror-behind", [])
    lines["mirror differing"] += res.get("mirror-bad", [])
    lines["vouch lookup from the registry"] += res.get("cli-failures", [])
    for n, v in res.get("webhook-state", {}).items():
        lines["webhook subscriptions"].append(f"{n}: {v}")
    for n in ("a", "b", "s"):
        m = f.scrapes.get((n, st.procs[n].starts), {})
        cache = m.get(("vouch_read_cache_bytes", ""))
        lines["vouch_read_cache_bytes at the end, MiB"].append(
            f"{n}: {cache / 2**20:.1f}" if cache is not None else f"{n}: none")
    for n in ("a", "b"):
        m = f.scrapes.get((n, st.procs[n].starts), {})
        lines["vouch_mirror_lag at the end"].append(
            f"{n}: " + (", ".join(f"{k[1]} {v:.0f}" for k, v in m.items() if k[0] == "vouch_mirror_lag")
                        or "none"))
    for kind, ls in lines.items():
        if ls:
            print(f"{kind}:")
            for line in ls[:10]:
                print("  " + line)
            if len(ls) > 10:
                print(f"  … {len(ls) - 10} more")
