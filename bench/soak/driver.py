#!/usr/bin/env python3
"""Soak and fault driver for vouch: mixed load, scheduled faults, end-of-run checks.

Run by run.sh beside it (which builds the binaries, starts PostgreSQL, mounts the tmpfs and
writes the configuration), with the project venv's python (python-tuf, securesystemslib):

    target/venv/bin/python bench/soak/driver.py CONFIG.json

CONFIG.json names the duration, the processes to start (argv, env, log file, URL: two
vouch-server replicas on PostgreSQL "a" and "b", one vouch-server on SQLite "s", the
vouch-admission webhook "w", served over HTTPS; the docker-registry "r" the replicas mirror
into), the static push token and the feeds' token, the tmpfs of the SQLite server and
PostgreSQL's own tmpfs, the webhook's cache directory and TLS files (the CA the driver verifies
it against, and that CA's key to sign a new certificate mid-run), the organisation root key
the webhook pins, and the pg_ctl commands. The driver starts and restarts those processes
itself (it is the fault injector) and kills them when it ends. feeds.py beside it follows what
the servers push outward (event streams, webhook deliveries, the registry mirror into "r") and
checks it. It prints progress on stderr and the summary table on stdout,
and exits 1 when a check fails (lost publish, fork, unverifiable repository, undocumented
status, wrong admission decision, a process that died on its own, a fault not injected or
not recovered from, a failed check of feeds.py).
"""

import errno
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import ssl
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Key, Metadata, Root, TargetFile, Targets
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater

import feeds

EXPIRES = datetime(2099, 1, 1, tzinfo=timezone.utc)
# Statuses docs/api.md documents for vouch-server (its error table, plus 200 and 304).
DOCUMENTED = {200, 304, 400, 401, 403, 404, 405, 408, 409, 413, 431, 500, 503}
# What the driver's own well-formed requests may legitimately get, by kind (anything else is
# reported; 404 on reads only for files of a repository being deleted or not yet published).
EXPECTED = {
    "publish": {200, 409, 503},
    "key": {200, 503},
    "rotate": {200, 503},
    "delete": {200, 404, 503},
    "read-current": {200, 503},
    "read-version": {200, 503},
    "read-back": {200, 404, 503},  # reading back a publish that got no 200
}

T0 = time.monotonic()
PIDS_FILE = os.devnull
TLS_CONTEXT = None  # verifies the webhook's certificate against the run's CA (set by main)
FAULT_NOW = [None]  # the fault kind being injected, to count statuses seen during each kind


def now():
    return time.monotonic() - T0


def log(*a):
    print(f"[{now():7.1f}s]", *a, file=sys.stderr, flush=True)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# --- processes --------------------------------------------------------------------------


class Proc:
    """One server process the driver starts, kills and restarts."""

    def __init__(self, name, spec):
        self.name = name
        self.argv = spec["argv"]
        self.env = dict(os.environ, **spec.get("env", {}))
        self.log_path = spec["log"]
        self.url = spec["url"]
        self.health = spec["health"]
        self.popen = None
        self.started_at = None
        self.starts = 0
        self.expected_down = False
        self.baseline = None  # (rss_kib, fds, at_seconds) of the current incarnation
        self.unexpected_exits = []
        self.kills = []  # seconds at which the driver SIGKILLed it

    def start(self):
        logf = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=logf, stderr=logf,
                                      stdin=subprocess.DEVNULL)
        logf.close()
        self.started_at = now()
        self.starts += 1
        with open(PIDS_FILE, "a") as f:  # run.sh kills what is left of these on exit
            f.write(f"{self.popen.pid}\n")
        self.baseline = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} at start; "
                                   f"see {self.log_path}")
            st, _, _ = request("GET", self.url + self.health, timeout=2)
            if st == 200:
                self.expected_down = False
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become healthy; see {self.log_path}")

    def kill(self):
        self.expected_down = True
        self.kills.append(now())
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def pid(self):
        return self.popen.pid if self.popen else None


def proc_usage(pid):
    """(VmRSS KiB, open fds) of a process, or None."""
    try:
        rss = None
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# --- HTTP -------------------------------------------------------------------------------

STATS = Counter()  # (kind, server, status) -> count
STATS_LOCK = threading.Lock()
NO_RETRY_AFTER = Counter()  # (kind, server) -> 503s without Retry-After
SAMPLES = {}  # (kind, server, status) -> first error body seen
FAULT_STATS = Counter()  # (fault kind, server, status) -> count while that fault was on


def request(method, url, body=None, headers=None, timeout=45):
    """(status or 'conn-error'/'timeout', headers dict, body bytes). https:// is verified
    against the run's CA (a failed verification is a conn-error, never ignored)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                           context=TLS_CONTEXT)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    path = u.path + (("?" + u.query) if u.query else "")
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    except TimeoutError:
        return "timeout", {}, b""
    except (OSError, http.client.HTTPException) as e:
        return "conn-error", {}, str(e).encode()
    finally:
        conn.close()


def counted(kind, server, method, url, body=None, headers=None):
    st, h, data = request(method, url, body, headers)
    with STATS_LOCK:
        STATS[(kind, server, st)] += 1
        if st == 503 and "retry-after" not in h:
            NO_RETRY_AFTER[(kind, server)] += 1
        if isinstance(st, int) and st >= 400 and (kind, server, st) not in SAMPLES:
            SAMPLES[(kind, server, st)] = data[:400].decode("utf-8", "replace")
        if FAULT_NOW[0]:
            FAULT_STATS[(FAULT_NOW[0], server, st)] += 1
    return st, h, data


def retry_after(h):
    try:
        return min(float(h.get("retry-after", "1")), 5.0)
    except ValueError:
        return 1.0


def multipart(files):
    b = uuid.uuid4().hex
    out = []
    for role, data in files:
        out.append(f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="{role}"\r\n'
                   f"Content-Type: application/json\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{b}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={b}"


# --- keys and metadata ------------------------------------------------------------------


def new_signer():
    private = Ed25519PrivateKey.generate()
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def load_signer(path):
    with open(path, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))


def server_key(raw):
    obj = json.loads(raw)
    keyid = hashlib.sha256(encode_canonical(obj).encode("utf-8")).hexdigest()
    return Key.from_dict(keyid, dict(obj))


def to_bytes(md):
    return md.to_bytes(JSONSerializer())


STABLE = "stable"  # a tag every targets version of an admission repository signs, unchanged


class Repo:
    def __init__(self, gun, group, admission):
        self.gun = gun
        self.group = group
        self.admission = admission
        self.lock = threading.Lock()
        self.epoch = 0
        self.live = False
        self.root = None  # Metadata[Root] as last stored
        self.root_signer = None
        self.targets_signer = None
        self.targets = {}  # name -> TargetFile of the stored targets version
        self.targets_version = 0
        self.first_root = None  # bytes of 1.root.json of this epoch
        self.counter = 0
        self.pending = None  # (files, apply) of a publish whose outcome is not known yet
        self.stable = TargetFile(1000, {"sha256": sha256(gun.encode())}, STABLE)


class State:
    def __init__(self, cfg):
        self.cfg = cfg
        self.token = cfg["token"]
        self.procs = {n: Proc(n, s) for n, s in cfg["procs"].items()}
        self.groups = {"pg": ["a", "b"], "sqlite": ["s"]}
        self.repos = []
        self.repos_lock = threading.Lock()
        self.acks = []  # dict(gun, epoch, group, role, version, sha, data, server, how)
        self.acks_lock = threading.Lock()
        self.attempted = set()  # (gun, role, version) of every publish sent, for feeds.py
        self.seen = defaultdict(set)  # (group, gun, epoch, role, version) -> {sha}
        self.seen_lock = threading.Lock()
        self.ops = Counter()  # operation -> count (completed)
        self.faults = Counter()
        self.faults_not_injected = Counter()  # kind -> scheduled but no time left
        self.problems = Counter()  # during-run anomalies
        self.problem_samples = defaultdict(list)
        self.org_signer = load_signer(cfg["org_key_pem"])
        self.stop = threading.Event()
        self.next_id = 0
        self.denials = {}  # gun -> [first, last, count, first message] of signed tags denied
        self.corruptions = []  # (seconds, file, how, webhook restarted)
        self.rss_trace = []  # (seconds, {process: RSS KiB}) every 30 s
        self.pg_restarts = []  # seconds at which PostgreSQL was started again after its disk filled
        self.pg_disk_full = []  # (seconds, what PostgreSQL did: one line per pg-disk-full)
        self.cert_rotations = []  # (seconds, old serial, new serial, seconds until served or None)
        self.recovery = []  # (fault kind, seconds from its end until a publish was acknowledged)
    def problem(self, kind, detail):
        self.problems[kind] += 1
        if len(self.problem_samples[kind]) < 5:
            self.problem_samples[kind].append(detail)
        log("PROBLEM", kind, detail)

    def url(self, server, gun, tail):
        return f"{self.procs[server].url}/v2/{gun}/_trust/tuf/{tail}"

    def auth(self, extra=None):
        h = {"Authorization": f"Bearer {self.token}"}
        h.update(extra or {})
        return h

    def pick(self, group):
        return random.choice(self.groups[group])

    def observe(self, repo, role, version, data):
        with self.seen_lock:
            self.seen[(repo.group, repo.gun, repo.epoch, role, version)].add(sha256(data))

    def ack(self, repo, role, version, data, server, how):
        with self.acks_lock:
            self.acks.append(dict(gun=repo.gun, epoch=repo.epoch, group=repo.group, role=role,
                                  version=version, sha=sha256(data), data=data,
                                  server=server, how=how, at=now()))
        self.observe(repo, role, version, data)


# --- operations (each runs with the repository's lock held) ------------------------------


def call(st, repo, kind, method, tail, body=None, headers=None, tries=8, ok=(200,)):
    """A request to some server of the repository's group, retried on 503/outage.
    Returns (status, headers, body, server, uncertain): uncertain when an earlier attempt
    ended without an answer (the request may have taken effect)."""
    uncertain = False
    st_ = None
    errors_500 = 0
    for attempt in range(tries):
        server = st.pick(repo.group)
        st_, h, data = counted(kind, server, method, st.url(server, repo.gun, tail), body,
                               headers)
        if st_ in ok or (isinstance(st_, int) and st_ not in (500, 503)):
            return st_, h, data, server, uncertain
        if st_ in ("timeout", 503, 500) or (st_ == "conn-error" and method != "GET"):
            # A 503 past the body (request timeout) or a cut connection may have committed.
            uncertain = uncertain or st_ != 503 or method != "GET"
        if st_ == 500:
            errors_500 += 1
            if errors_500 >= 3:  # a fault, not an outage (e.g. a full disk): stop trying
                break
        time.sleep(retry_after(h) if st_ == 503 else 1.0)
        if st.stop.is_set() and attempt >= 2:
            break
    return st_, {}, b"", None, uncertain


def get_server_key(st, repo, role):
    s, _, data, _, _ = call(st, repo, "key", "GET", f"{role}.key", headers=st.auth())
    if s != 200:
        raise Unavailable(f"GET {role}.key: {s}")
    return server_key(data)


class Unavailable(Exception):
    pass


def publish(st, repo, files, apply):
    """files: [(role, version, bytes)]; apply() updates the driver's view once they are
    stored. True when acknowledged (200) or found stored by reading back."""
    body, ctype = multipart([(r, d) for r, _, d in files])
    st.attempted.update((repo.gun, r, v) for r, v, _ in files)
    s, _, data, server, uncertain = call(
        st, repo, "publish", "POST", "", body, st.auth({"Content-Type": ctype}))
    if s == 200:
        for role, version, d in files:
            st.ack(repo, role, version, d, server, "200")
        apply()
        return True
    if s == 409 and uncertain:
        pass  # an earlier attempt may have gone through: reconcile below
    elif s == 409:
        st.problem("publish-409-without-race", f"{repo.gun}: {data[:200]!r}")
    elif isinstance(s, int) and s not in (500, 503):
        st.problem(f"publish-{s}", f"{repo.gun}: {data[:300]!r}")
    try:
        stored = reconcile(st, repo, files)
    except Unavailable:
        repo.pending = (files, apply)  # settled before the repository's next operation
        raise
    if stored:
        apply()
    return stored


def settle(st, repo):
    """Settles a publish whose outcome was left open (the store was unreachable)."""
    if repo.pending:
        files, apply = repo.pending
        if reconcile(st, repo, files):
            apply()
        repo.pending = None


def reconcile(st, repo, files):
    """After a publish without a 200: did it go through? Reads each file back by version
    until the store answers. True when every file is stored as sent."""
    deadline = time.monotonic() + 120
    stored = []
    for role, version, d in files:
        while True:
            s, _, data, server, _ = call(st, repo, "read-back", "GET",
                                         f"{version}.{role}.json", tries=30, ok=(200, 404))
            if s == 200:
                st.observe(repo, role, version, data)
                if data != d:
                    # Another attempt's document holds this version: one answered with an
                    # error or cut off that committed after the driver had read it back.
                    st.problem("late-commit", f"{repo.gun} {version}.{role}.json is not the last attempt's")
                stored.append(data == d)
                break
            if s == 404:
                stored.append(False)
                break
            if time.monotonic() > deadline:
                raise Unavailable(f"reconcile {repo.gun}: {s}")
    if all(stored):
        for role, version, d in files:
            st.ack(repo, role, version, d, "?", "stored-without-200")
        return True
    if any(stored):
        st.problem("partial-publish", f"{repo.gun}: {[f[:2] for f in files]} stored {stored}")
    return False


def op_create(st, repo):
    """Creates (or re-creates after a deletion) a repository: root v1 and targets v1."""
    ts = get_server_key(st, repo, "timestamp")
    sn = get_server_key(st, repo, "snapshot")
    root_signer = st.org_signer if repo.admission else new_signer()
    targets_signer = new_signer()
    # Root v1 names its repository (x-vouch-gun), as `vouch init` writes it: a key pin admits
    # only a first root naming the repository asked for.
    root = Root(version=1, expires=EXPIRES, consistent_snapshot=True,
                unrecognized_fields={"x-vouch-gun": repo.gun})
    root.add_key(root_signer.public_key, Root.type)
    root.add_key(targets_signer.public_key, Targets.type)
    root.add_key(sn, "snapshot")
    root.add_key(ts, "timestamp")
    root_md = Metadata(root)
    root_md.sign(root_signer)
    t = {STABLE: repo.stable, "t1": TargetFile(1, {"sha256": sha256(os.urandom(8))}, "t1")}
    tmd = Metadata(Targets(version=1, expires=EXPIRES, targets=t))
    tmd.sign(targets_signer)
    rb, tb = to_bytes(root_md), to_bytes(tmd)
    repo.epoch += 1

    def apply():
        repo.root, repo.root_signer, repo.targets_signer = root_md, root_signer, targets_signer
        repo.targets, repo.targets_version, repo.first_root = t, 1, rb
        repo.live = True

    return publish(st, repo, [("root", 1, rb), ("targets", 1, tb)], apply)


def targets_md(repo, version, targets, signer):
    md = Metadata(Targets(version=version, expires=EXPIRES, targets=targets))
    md.sign(signer)
    return to_bytes(md)


def op_targets(st, repo):
    """A new targets version: one target added (the oldest dropped past 20)."""
    repo.counter += 1
    t = dict(repo.targets)
    name = f"v{repo.counter}"
    t[name] = TargetFile(repo.counter, {"sha256": sha256(os.urandom(8))}, name)
    extra = [n for n in t if n not in (STABLE,)]
    while len(t) > 21:
        del t[extra.pop(0)]
    v = repo.targets_version + 1
    data = targets_md(repo, v, t, repo.targets_signer)
    repo.targets_version = v  # never reused, also when this publish is not acknowledged

    def apply():
        repo.targets = t

    return publish(st, repo, [("targets", v, data)], apply)


def op_rotate(st, repo):
    """Online key rotation (timestamp or snapshot), root re-published to adopt the new key;
    one time in three the repository's own targets key is rotated in the same update."""
    role = random.choice(["timestamp", "snapshot"])
    s, _, data, _, _ = call(st, repo, "rotate", "POST", f"{role}.key", headers=st.auth())
    if s != 200:
        raise Unavailable(f"rotate {role}: {s}")
    new_key = server_key(data)
    root_md = Metadata.from_bytes(to_bytes(repo.root))
    root = root_md.signed
    for keyid in list(root.roles[role].keyids):
        root.revoke_key(keyid, role)
    root.add_key(new_key, role)
    files = []
    new_targets_signer = None
    if random.random() < 1 / 3:
        new_targets_signer = new_signer()
        for keyid in list(root.roles["targets"].keyids):
            root.revoke_key(keyid, "targets")
        root.add_key(new_targets_signer.public_key, "targets")
    root.version += 1
    root_md.signatures.clear()
    root_md.sign(repo.root_signer)
    files.append(("root", root.version, to_bytes(root_md)))
    if new_targets_signer:
        tv = repo.targets_version + 1
        files.append(("targets", tv, targets_md(repo, tv, repo.targets, new_targets_signer)))
    if new_targets_signer:
        repo.targets_version = files[1][1]

    def apply():
        repo.root = root_md
        if new_targets_signer:
            repo.targets_signer = new_targets_signer

    return publish(st, repo, files, apply)


def op_delete(st, repo):
    """Deletes the repository's trust data (until 200 or 404), then re-creates it."""
    deadline = time.monotonic() + 30
    while True:
        s, _, data, _, _ = call(st, repo, "delete", "DELETE", "", headers=st.auth(),
                                ok=(200, 404))
        if s == 200 or s == 404:
            if s == 404:
                st.ops["delete-404-after-retry"] += 1
            break
        if time.monotonic() > deadline:
            # Deleted or not: unknown. What was acknowledged is no longer checked.
            repo.live = False
            repo.epoch += 1
            st.ops["delete-unsettled"] += 1
            raise Unavailable(f"delete {repo.gun}: {s}")
    repo.live = False
    repo.root = None
    repo.counter = 0
    return op_create(st, repo)


def op_read(st, repo):
    """Reads current files and acknowledged versions; checks them against what was sent."""
    server = st.pick(repo.group)
    role = random.choice(["root", "targets", "snapshot", "timestamp"])
    s, _, data = counted("read-current", server, "GET", st.url(server, repo.gun, f"{role}.json"))
    if s == 200:
        try:
            v = json.loads(data)["signed"]["version"]
            st.observe(repo, role, v, data)
        except (ValueError, KeyError):
            st.problem("unparseable-current", f"{repo.gun} {role}")
    with st.acks_lock:
        mine = [a for a in st.acks[-2000:] if a["gun"] == repo.gun and a["epoch"] == repo.epoch]
    if mine:
        a = random.choice(mine)
        server = st.pick(repo.group)
        s, _, data = counted("read-version", server, "GET",
                             st.url(server, repo.gun, f"{a['version']}.{a['role']}.json"))
        if s == 200 and data != a["data"]:
            st.problem("read-differs-from-ack", f"{repo.gun} {a['version']}.{a['role']} on {server}")
        elif s == 404:
            st.problem("acked-version-404", f"{repo.gun} {a['version']}.{a['role']} on {server}")
    return True


REVIEW_TEMPLATE = {
    "kind": "AdmissionReview",
    "apiVersion": "admission.k8s.io/v1",
    "request": {
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "soak", "namespace": "default", "operation": "CREATE",
        "userInfo": {"username": "soak"},
        "object": {"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"name": "soak", "namespace": "default"},
                   "spec": {"containers": []}},
        "dryRun": False,
    },
}


def op_review(st, repo):
    """An AdmissionReview to the webhook: the signed tag `stable` must be admitted (the
    webhook answers from its warm state while the server is down), a tag never signed must
    not be."""
    signed = random.random() < 0.7
    tag = STABLE if signed else f"unsigned-{random.randrange(1000)}"
    review = json.loads(json.dumps(REVIEW_TEMPLATE))
    review["request"]["uid"] = str(uuid.uuid4())
    review["request"]["object"]["spec"]["containers"] = [{"name": "c", "image": f"{repo.gun}:{tag}"}]
    path = random.choice(["/validate", "/mutate"])
    s, _, data = counted("review", "w", "POST", st.procs["w"].url + path,
                         json.dumps(review).encode(), {"Content-Type": "application/json"})
    if s != 200:
        if not st.procs["w"].expected_down:
            st.problem("review-not-200", f"{s} {data[:200]!r}")
        return False
    resp = json.loads(data)["response"]
    allowed = resp.get("allowed")
    if signed and not allowed:
        msg = resp.get("status", {}).get("message", "")
        d = st.denials.setdefault(repo.gun, [now(), now(), 0, msg])
        d[1], d[2] = now(), d[2] + 1
        st.problem("review-signed-denied", f"{repo.gun}:{tag}: {msg[:600]}")
    elif not signed and allowed:
        st.problem("review-unsigned-allowed", f"{repo.gun}:{tag}")
    else:
        st.ops["review-" + ("allowed" if allowed else "denied")] += 1
    return True


# --- load -------------------------------------------------------------------------------

WEIGHTS = [("read", 40), ("targets", 30), ("review", 12), ("create", 8), ("rotate", 6),
           ("delete", 1)]


def new_repo(st, group, admission):
    with st.repos_lock:
        st.next_id += 1
        # The replicas' public repositories live under the registry they are mirrored into.
        base = st.cfg["mirror_prefix"] if group == "pg" and not admission else "soak.example"
        gun = f"{base}/{'adm' if admission else 'pub'}/{group}-{st.next_id}"
        repo = Repo(gun, group, admission)
        st.repos.append(repo)
    return repo


def worker(st, n):
    rnd = random.Random(n)
    while not st.stop.is_set():
        op = rnd.choices([w[0] for w in WEIGHTS], [w[1] for w in WEIGHTS])[0]
        try:
            if op == "create":
                if len(st.repos) >= st.cfg["max_repos"]:
                    op = "targets"
                else:
                    repo = new_repo(st, rnd.choice(["pg", "pg", "sqlite"]), False)
                    with repo.lock:
                        if op_create(st, repo):
                            st.ops["create"] += 1
                    continue
            if op == "review":
                repo = rnd.choice([r for r in st.repos if r.admission])
                op_review(st, repo)  # no lock: the webhook reads, the driver does not write
                st.ops["review"] += 1
                continue
            candidates = [r for r in st.repos
                          if (r.live or r.pending) and not (op == "delete" and r.admission)]
            rnd.shuffle(candidates)
            for repo in candidates[:20]:
                if repo.lock.acquire(blocking=False):
                    break
            else:
                time.sleep(0.05)
                continue
            try:
                time.sleep(st.cfg.get("think_ms", 0) / 1000)
                settle(st, repo)
                if not repo.live:
                    continue
                fn = {"read": op_read, "targets": op_targets, "rotate": op_rotate,
                      "delete": op_delete}[op]
                if fn(st, repo):
                    st.ops[op] += 1
                else:
                    st.ops[op + "-not-acknowledged"] += 1
            finally:
                repo.lock.release()
        except Unavailable as e:
            st.ops[op + "-gave-up"] += 1
            log("gave up", op, e)
        except Exception:
            st.problem("driver-exception", traceback.format_exc()[-600:])
            time.sleep(0.5)


# --- faults -----------------------------------------------------------------------------


def pg_pids(st):
    try:
        with open(st.cfg["pg_pidfile"]) as f:
            pm = int(f.readline())
    except (OSError, ValueError):
        return []
    pids = [pm]
    try:
        tasks = os.listdir(f"/proc/{pm}/task")
    except OSError:
        return []  # a stale postmaster.pid: the postmaster is gone
    for t in tasks:
        try:
            with open(f"/proc/{pm}/task/{t}/children") as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return pids


def run_cmd(st, argv):
    with open(st.cfg["pg_ctl_log"], "ab") as out:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                           cwd=st.cfg["pg_cwd"])
    if r.returncode != 0:
        raise RuntimeError(f"{argv} exited {r.returncode}; see {st.cfg['pg_ctl_log']}")


def kill_and_restart(st, name):
    """SIGKILL in the middle of the load, restart over the same data directory."""
    p = st.procs[name]
    log(f"fault: SIGKILL {name}")
    p.kill()
    time.sleep(st.cfg["pause"])
    p.start()
    log(f"fault: {name} restarted")


def fault_kill_replica(st, i):
    kill_and_restart(st, "b")


def fault_kill_sqlite(st, i):
    kill_and_restart(st, "s")


def fill_until_enospc(path):
    """Writes a ballast file at path until the filesystem answers ENOSPC, to the last byte.
    Returns the bytes written; the caller holds and then unlinks it."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # unbuffered writes
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    written += os.write(fd, b"\0" * size)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return written


def fs_usage(path):
    v = os.statvfs(path)
    total = v.f_blocks * v.f_frsize
    return total - v.f_bavail * v.f_frsize, total


def fault_fill_disk(st, i):
    """Fills the SQLite server's tmpfs to the last block, holds, frees it."""
    path = os.path.join(st.cfg["tmpfs"], "fill")
    try:
        written = fill_until_enospc(path)
        used, total = tmpfs_usage(st)
        log(f"fault: tmpfs of s full ({written >> 20} MiB written, {used >> 20}/{total >> 20} MiB)")
        time.sleep(st.cfg["hold"])
    finally:
        os.unlink(path)
    log("fault: tmpfs of s freed")


def postmaster_alive(st):
    """True when the postmaster named by postmaster.pid runs (a stale file after a crash
    names a process that is gone)."""
    pids = pg_pids(st)
    if not pids:
        return False
    try:
        with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
            return b"postgres" in f.read()
    except OSError:
        return False


def pg_ready(st):
    return subprocess.run(st.cfg["pg_isready"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


PG_LOG_MARKS = [("PANIC", "PANIC"), ("No space left on device", "ENOSPC"),
                ("terminating any other active server processes", "backends reset"),
                ("all server processes terminated; reinitializing", "reinitialised"),
                ("aborting startup due to startup process failure", "startup aborted"),
                ("database system is shut down", "shut down"),
                ("database system is ready to accept connections", "ready")]


def pg_log_since(st, offset):
    """What PostgreSQL logged since offset: counts of the lines that say what it did."""
    marks = Counter()
    try:
        with open(st.cfg["pg_log"], "rb") as f:
            f.seek(offset)
            for line in f.read().decode("utf-8", "replace").splitlines():
                for needle, label in PG_LOG_MARKS:
                    if needle in line:
                        marks[label] += 1
    except OSError:
        pass
    return marks


def fault_pg_disk_full(st, i):
    """Fills PostgreSQL's own tmpfs with a ballast file until ENOSPC, holds, frees it. When
    PostgreSQL did not survive (no postmaster) or is not ready 60 s after the space came
    back, it is started again, as a supervisor would, and that is counted."""
    path = os.path.join(st.cfg["pg_disk"], "soak-ballast")
    log_offset = os.path.getsize(st.cfg["pg_log"])
    try:
        written = fill_until_enospc(path)
        used, total = fs_usage(st.cfg["pg_disk"])
        log(f"fault: PostgreSQL's tmpfs full ({written >> 20} MiB written, {used >> 20}/{total >> 20} MiB)")
        time.sleep(st.cfg["hold"])
    finally:
        os.unlink(path)
    freed = now()
    log("fault: PostgreSQL's tmpfs freed")
    restarted = False
    deadline = time.monotonic() + 60
    while not pg_ready(st):
        if not postmaster_alive(st) or time.monotonic() > deadline:
            log("fault: PostgreSQL did not come back by itself: starting it")
            if postmaster_alive(st):  # alive but not ready after 60 s: stop it first
                run_cmd(st, st.cfg["pg_stop"])
            run_cmd(st, st.cfg["pg_start"])
            st.pg_restarts.append(now())
            restarted = True
            break
        time.sleep(0.5)
    marks = pg_log_since(st, log_offset)
    st.pg_disk_full.append((freed, restarted, now() - freed, dict(marks)))
    log(f"fault: PostgreSQL ready {now() - freed:.1f} s after the space came back"
        f"{' (started again)' if restarted else ''}; its log: {dict(marks)}")


def served_serial(st):
    """Serial number of the certificate the webhook presents to a new connection (verified
    against the run's CA)."""
    u = urllib.parse.urlsplit(st.procs["w"].url)
    with socket.create_connection((u.hostname, u.port), timeout=5) as raw:
        with TLS_CONTEXT.wrap_socket(raw, server_hostname=u.hostname) as t:
            return int(t.getpeercert()["serialNumber"], 16)


def fault_rotate_cert(st, i):
    """Replaces the webhook's certificate and key files with a new pair signed by the same
    CA (as cert-manager renews a Secret in place) and checks that new connections get the new
    certificate within cert_reload_bound seconds, with no restart of the webhook."""
    tls = st.cfg["tls"]
    w = st.procs["w"]
    old = served_serial(st)
    serial = random.getrandbits(62) | 1 << 62
    d = tempfile.mkdtemp(dir=os.path.dirname(tls["cert"]))
    try:
        for argv in (["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", f"{d}/key", "-out", f"{d}/csr"],
                     ["openssl", "x509", "-req", "-in", f"{d}/csr", "-CA", tls["ca"], "-CAkey", tls["ca_key"],
                      "-days", "2", "-set_serial", str(serial), "-extfile", tls["ext"], "-out", f"{d}/cert"]):
            subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        pid, starts = w.pid(), w.starts
        # Key first, then certificate, each by rename: a check between the two sees a pair
        # that does not match, which the webhook must keep out (old pair served meanwhile).
        os.replace(f"{d}/key", tls["key"])
        os.replace(f"{d}/cert", tls["cert"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    t = now()
    log(f"fault: webhook certificate replaced (serial {old:x} -> {serial:x})")
    took, errors = None, Counter()
    while now() - t < st.cfg["cert_reload_bound"]:
        try:
            got = served_serial(st)
        except (OSError, ssl.SSLError) as e:
            errors[type(e).__name__] += 1
            got = None
        if got == serial:
            took = now() - t
            break
        time.sleep(0.2)
    restarted = w.pid() != pid or w.starts != starts
    st.cert_rotations.append((t, old, serial, took, dict(errors), restarted))
    if took is None:
        st.problem("cert-not-reloaded", f"serial {serial:x} not served {st.cfg['cert_reload_bound']} s "
                                        f"after the files changed (errors {dict(errors)})")
    elif restarted:
        st.problem("cert-reload-restarted", "the webhook restarted during the rotation")
    else:
        log(f"fault: new certificate served after {took:.1f} s")


def fault_db_down(st, i):
    if i % 2 == 0:
        log("fault: PostgreSQL stopped (pg_ctl stop -m fast)")
        run_cmd(st, st.cfg["pg_stop"])
        time.sleep(st.cfg["hold"])
        run_cmd(st, st.cfg["pg_start"])
        log("fault: PostgreSQL started")
    else:
        pids = pg_pids(st)
        log(f"fault: PostgreSQL frozen (SIGSTOP to {len(pids)} processes)")
        for p in pids:
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:
                pass
        time.sleep(st.cfg["hold"])
        for p in pids:
            try:
                os.kill(p, signal.SIGCONT)
            except OSError:
                pass
        log("fault: PostgreSQL resumed (SIGCONT)")


def fault_corrupt_cache(st, i):
    files = []
    for d, _, names in os.walk(st.cfg["cache_dir"]):
        files += [os.path.join(d, n) for n in names]
    if not files:
        log("fault: webhook cache empty, nothing to corrupt")
        return False
    path = random.choice(files)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        how = i % 3
        if how == 0 and data:  # flip bytes in the middle
            for k in range(min(8, len(data))):
                data[len(data) // 2 + k - 4 if len(data) > 8 else k] ^= 0x5A
        elif how == 1:  # truncate
            data = data[: len(data) // 3]
        else:  # replace with other JSON
            data = b'{"signed": {"_type": "root", "version": 999999}, "signatures": []}'
        f.seek(0)
        f.truncate()
        f.write(bytes(data))
    rel = os.path.relpath(path, st.cfg["cache_dir"])
    st.corruptions.append((now(), urllib.parse.unquote(rel.split("/", 2)[2]),
                           ["bytes flipped", "truncated", "replaced"][how], i % 2 == 1))
    log(f"fault: corrupted webhook cache file {rel} ({['bytes flipped', 'truncated', 'replaced'][how]})")
    if i % 2 == 1:  # the webhook reads its cache at start: restart it
        w = st.procs["w"]
        w.kill()
        w.start()
        log("fault: webhook restarted over the corrupted cache")
    return True


FAULTS = [("kill-replica", fault_kill_replica), ("fill-disk", fault_fill_disk),
          ("db-unreachable", fault_db_down), ("corrupt-cache", fault_corrupt_cache),
          ("kill-sqlite", fault_kill_sqlite), ("pg-disk-full", fault_pg_disk_full),
          ("rotate-cert", fault_rotate_cert), ("receiver-down", feeds.fault_receiver_down)]
RECOVERY_BOUND = 60  # seconds after a fault within which both stores must acknowledge a publish


def wait_recovered(st, name, since):
    """Waits until a publish made after the fault ended was acknowledged (200) on both stores,
    so that the next fault meets a load that has recovered; records how long it took."""
    n = 0
    groups = set()
    while now() - since < RECOVERY_BOUND and not st.stop.is_set():
        with st.acks_lock:
            new = st.acks[n:]
            n = len(st.acks)
        groups |= {a["group"] for a in new if a["how"] == "200" and a["at"] > since}
        if groups >= set(st.groups):
            st.recovery.append((name, now() - since))
            return
        time.sleep(0.2)
    if not st.stop.is_set():
        st.recovery.append((name, None))
        st.problem("load-not-recovered", f"after {name}: no publish acknowledged on "
                                         f"{sorted(set(st.groups) - groups)} within {RECOVERY_BOUND} s")


def injector(st, start, end):
    """The kinds in turn, one every (end - start) / (kinds x faults_per_kind) seconds, but
    never before the load recovered from the previous one and `quiet` seconds passed;
    faults that no longer fit before end are not injected (counted)."""
    n_each = st.cfg["faults_per_kind"]
    total = n_each * len(FAULTS)
    step = (end - start) / total
    done = Counter()
    for k in range(total):
        name, fn = FAULTS[k % len(FAULTS)]
        at = start + k * step
        while now() < at and not st.stop.is_set():
            time.sleep(0.2)
        if st.stop.is_set():
            break
        if now() > end:
            for j in range(k, total):
                st.faults_not_injected[FAULTS[j % len(FAULTS)][0]] += 1
            break
        FAULT_NOW[0] = name
        try:
            if fn(st, done[name]) is not False:
                st.faults[name] += 1
            done[name] += 1
        except Exception:
            st.problem("fault-injection-failed", traceback.format_exc()[-600:])
        finally:
            FAULT_NOW[0] = None
        ended = now()
        wait_recovered(st, name, ended)
        while now() < ended + st.cfg["quiet"] and not st.stop.is_set():
            time.sleep(0.2)


def monitor(st, warmup):
    """Baselines RSS and fds of each process once warm; notices processes that died."""
    while not st.stop.is_set():
        for p in st.procs.values():
            if p.alive():
                if p.baseline is None and now() >= warmup and now() - p.started_at >= 20:
                    u = proc_usage(p.pid())
                    if u:
                        p.baseline = (u[0], u[1], now())
                        profile_heap(st, p)
            elif p.popen is not None and not p.expected_down:
                p.unexpected_exits.append((now(), p.popen.returncode))
                st.problem("process-died", f"{p.name} exited {p.popen.returncode}; see {p.log_path}")
                p.expected_down = True
                try:
                    p.start()
                except Exception as e:
                    st.problem("restart-failed", f"{p.name}: {e}")
        time.sleep(1)


def profile_heap(st, p):
    """With HEAPTRACK=NAME, attaches heaptrack to process NAME once it is warm (its first
    incarnation only), so the trace holds what was allocated after warm-up: what is still
    live at the end is growth, by call site (bench/RESULTS.md, "The RSS question")."""
    if os.environ.get("HEAPTRACK") != p.name or p.starts != 1 or getattr(st, "heaptrack", None):
        return
    out = os.path.join(os.path.dirname(PIDS_FILE), f"heaptrack.{p.name}")
    st.heaptrack = subprocess.Popen(["heaptrack", "-p", str(p.pid()), "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log(f"heaptrack attached to {p.name} (pid {p.pid()}): {out}.*")


def tmpfs_usage(st):
    return fs_usage(st.cfg["tmpfs"])


# --- final checks -----------------------------------------------------------------------


def final_checks(st):
    res = Counter()
    notes = defaultdict(list)
    live = {r.gun: r for r in st.repos if r.live}

    def get(server, gun, tail):
        for _ in range(30):
            s, _, data = request("GET", st.url(server, gun, tail))
            if s in (200, 404):
                return s, data
            time.sleep(1)
        return s, data

    # 1. Every acknowledged publish, byte for byte, from every server of its store.
    for a in st.acks:
        r = live.get(a["gun"])
        if r is None or r.epoch != a["epoch"]:
            res["acked-superseded"] += 1  # its repository was deleted afterwards
            continue
        res["acked-checked"] += 1
        a["checked"] = True
        for server in st.groups[a["group"]]:
            s, data = get(server, a["gun"], f"{a['version']}.{a['role']}.json")
            if s == 200 and data == a["data"]:
                continue
            res["lost"] += 1
            a["lost"] = True
            notes["lost"].append(f"{a['gun']} {a['version']}.{a['role']}.json on {server}: "
                                 f"{s}{' (different bytes)' if s == 200 else ''}; "
                                 f"acked by {a['server']} ({a['how']})")
            break
    # 2. Forks: one document per (repository, role, version) across servers and reads.
    for r in live.values():
        for role in ("root", "targets", "snapshot"):
            s, data = get(st.pick(r.group), r.gun, f"{role}.json")
            if s != 200:
                res["unreadable-current"] += 1
                notes["unreadable-current"].append(f"{r.gun} {role}.json: {s}")
                continue
            top = json.loads(data)["signed"]["version"]
            for v in range(1, top + 1):
                for server in st.groups[r.group]:
                    s, data = get(server, r.gun, f"{v}.{role}.json")
                    if s == 200:
                        st.observe(r, role, v, data)
                    elif role != "snapshot":
                        # every root and targets version up to the current one was published
                        # (targets versions skipped after an unacknowledged publish excepted)
                        if role == "root":
                            res["missing-root-version"] += 1
                            notes["missing-root-version"].append(f"{r.gun} {v}.root.json on {server}: {s}")
        s, data = get(st.pick(r.group), r.gun, "timestamp.json")
        if s == 200:
            st.observe(r, "timestamp", json.loads(data)["signed"]["version"], data)
    for key, shas in st.seen.items():
        group, gun, epoch, role, version = key
        r = live.get(gun)
        if len(shas) > 1:
            res["forks"] += 1
            notes["forks"].append(f"{gun} (epoch {epoch}) {version}.{role}.json: {len(shas)} documents")
    # 3. python-tuf verifies every live repository from every server of its store.
    for r in live.values():
        for server in st.groups[r.group]:
            d = tempfile.mkdtemp(prefix="soak-tuf-")
            try:
                u = Updater(metadata_dir=d,
                            metadata_base_url=st.url(server, r.gun, ""),
                            target_base_url=None, bootstrap=r.first_root)
                u.refresh()
                for name, want in r.targets.items():
                    info = u.get_targetinfo(name)
                    if info is None or info.hashes.get("sha256") != want.hashes["sha256"]:
                        raise ValueError(f"target {name}: {info and info.hashes}")
                if u._trusted_set.targets.version != r.targets_version and \
                        u._trusted_set.targets.version < r.targets_version:
                    pass  # the last targets version was not acknowledged (reconciled away)
                res["tuf-verified"] += 1
            except Exception as e:
                res["tuf-failed"] += 1
                notes["tuf-failed"].append(f"{r.gun} via {server}: {type(e).__name__}: {e}")
            finally:
                shutil.rmtree(d, ignore_errors=True)
    res["live-repositories"] = len(live)
    return res, notes


# --- main -------------------------------------------------------------------------------


def orgkey(pem_path, pub_path):
    """Writes a new ed25519 key: PKCS#8 PEM and the TUF public key object."""
    private = Ed25519PrivateKey.generate()
    with open(pem_path, "wb") as f:
        f.write(private.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    key = SSlibKey.from_crypto(private.public_key())
    with open(pub_path, "w") as f:
        json.dump(key.to_dict(), f)


def main():
    global PIDS_FILE, TLS_CONTEXT
    if sys.argv[1] == "orgkey":
        orgkey(sys.argv[2], sys.argv[3])
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    PIDS_FILE = cfg["pids_file"]
    TLS_CONTEXT = ssl.create_default_context(cafile=cfg["tls"]["ca"])  # hostname checked too
    st = State(cfg)
    duration, warmup = cfg["duration"], cfg["warmup"]
    try:
        for name in ("r", "a", "b", "s", "w"):
            st.procs[name].start()
            log(f"started {name} (pid {st.procs[name].pid()}) at {st.procs[name].url}")
        feeds.start(st)  # streams, webhook receiver, metrics: before the first change
        # The admission repositories exist before the webhook is asked about them.
        for k in range(cfg["admission_repos"]):
            repo = new_repo(st, "pg", True)
            with repo.lock:
                if not op_create(st, repo):
                    raise RuntimeError(f"could not create {repo.gun}")
        threads = [threading.Thread(target=worker, args=(st, n), daemon=True)
                   for n in range(cfg["workers"])]
        threads.append(threading.Thread(target=monitor, args=(st, warmup), daemon=True))
        # Faults from the end of warm-up to 30 s before the end, then quiet.
        fault_end = max(warmup + 1, duration - 30)
        threads.append(threading.Thread(target=injector, args=(st, warmup + 5, fault_end),
                                        daemon=True))
        for t in threads:
            t.start()
        load_end = time.monotonic() + duration
        last = 0
        while time.monotonic() < load_end:
            time.sleep(1)
            if now() - last >= 30:
                last = now()
                used, total = tmpfs_usage(st)
                ddir = os.path.join(st.cfg["tmpfs"], "data")
                sizes = {n: os.path.getsize(os.path.join(ddir, n)) >> 10 for n in os.listdir(ddir)}
                log(f"s data dir KiB: {sizes}")
                rss = {n: proc_usage(p.pid()) for n, p in st.procs.items() if p.alive()}
                st.rss_trace.append((now(), {n: u[0] for n, u in rss.items() if u}))
                log(f"RSS KiB, fds: {rss}")
                pg_used, pg_total = fs_usage(st.cfg["pg_disk"])
                log(f"ops {dict(st.ops)} faults {dict(st.faults)} problems "
                    f"{sum(st.problems.values())} tmpfs {used >> 20}/{total >> 20} MiB, "
                    f"PostgreSQL's {pg_used >> 20}/{pg_total >> 20} MiB")
        st.stop.set()
        for t in threads:
            t.join(timeout=180)
        end_usage = {}
        for n, p in st.procs.items():
            end_usage[n] = proc_usage(p.pid()) if p.alive() else None
        log("load stopped; checking")
        res, notes = final_checks(st)
        log("checking event streams, webhooks and the registry mirror")
        fres = feeds.final_checks(st)
        ok = report(st, res, notes, end_usage, fres)
        return 0 if ok else 1
    finally:
        st.stop.set()
        for p in st.procs.values():
            p.expected_down = True
            if p.alive():
                p.popen.send_signal(signal.SIGTERM)
                try:
                    p.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


def report(st, res, notes, end_usage, fres):
    ok = True
    print()
    print("| measure | value |")
    print("| --- | --- |")
    kinds = Counter()
    for (kind, _, _), n in STATS.items():
        kinds[kind] += n
    print("| requests by kind | " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) +
          f" (total {sum(kinds.values())}) |")
    print("| operations completed | " + ", ".join(f"{k} {n}" for k, n in sorted(st.ops.items())) + " |")
    used, total = tmpfs_usage(st)
    print(f"| SQLite server's tmpfs at the end | {used >> 20} of {total >> 20} MiB used |")
    used, total = fs_usage(st.cfg["pg_disk"])
    print(f"| PostgreSQL's tmpfs at the end | {used >> 20} of {total >> 20} MiB used |")
    print("| faults injected | " + ", ".join(f"{k} {n}" for k, n in sorted(st.faults.items())) +
          (" (not injected, no time left: " + ", ".join(f"{k} {n}" for k, n in sorted(st.faults_not_injected.items())) + ")"
           if st.faults_not_injected else "") + " |")
    rec = defaultdict(list)
    for name, took in st.recovery:
        rec[name].append(took)
    print("| load recovered after each fault (a publish acknowledged on both stores; slowest, s) | " +
          ", ".join(f"{k} {max(v):.1f}" if None not in v else f"{k} NOT within {RECOVERY_BOUND} s"
                    for k, v in sorted(rec.items())) + " |")
    print(f"| PostgreSQL restarted after disk full | {len(st.pg_restarts)} of {len(st.pg_disk_full)} |")
    rot = st.cert_rotations
    print(f"| webhook certificate replaced | {len(rot)}: new serial served to new connections after " +
          (", ".join(f"{r[3]:.1f} s" if r[3] is not None else "NEVER" for r in rot) or "-") +
          f" (bound {st.cfg['cert_reload_bound']} s), webhook restarted {sum(1 for r in rot if r[5])} |")
    acked = sum(1 for a in st.acks if a["how"] == "200")
    print(f"| acknowledged publish files | {acked} (+{len(st.acks) - acked} stored without a 200, found by reading back); "
          f"{res['acked-checked']} in live repositories checked on every server of their store, "
          f"{res['acked-superseded']} of since-deleted repositories |")
    print(f"| acknowledged-then-lost | {res['lost']} |")
    for name, group in (("b", "pg"), ("s", "sqlite")):
        p = st.procs[name]
        if p.kills:
            before = [a for a in st.acks if a["group"] == group and a["at"] < p.kills[-1] and a.get("checked")]
            print(f"| of those, acknowledged before the last SIGKILL of {name} ({p.kills[-1]:.0f} s; "
                  f"{len(p.kills)} kills) | {len(before)} checked, {sum(1 for a in before if a.get('lost'))} lost |")
    print(f"| forks | {res['forks']} |")
    print(f"| python-tuf verified | {res['tuf-verified']} of {res['tuf-verified'] + res['tuf-failed']} "
          f"(repository, server) pairs; {res['live-repositories']} live repositories |")
    for n in ("a", "b", "s", "w"):
        p = st.procs[n]
        b, e = p.baseline, end_usage.get(n)
        label = {"a": "replica a (PostgreSQL, never killed)",
                 "b": "replica b (PostgreSQL, killed; since its last start)",
                 "s": "SQLite server (tmpfs, killed; since its last start)", "w": "webhook"}[n]
        if b and e:
            print(f"| {label}: RSS warm → end | {b[0] / 1024:.1f} → {e[0] / 1024:.1f} MiB "
                  f"({(e[0] - b[0]) / 1024:+.1f} MiB; baseline at {b[2]:.0f} s, {p.starts} start(s)) |")
            print(f"| {label}: open fds warm → end | {b[1]} → {e[1]} ({e[1] - b[1]:+d}) |")
        else:
            print(f"| {label}: RSS / fds | no baseline (the last incarnation was not up 20 s after warm-up) |")
    by_server = defaultdict(Counter)
    for (kind, server, s), n in STATS.items():
        by_server[(kind, server)][s] += n
    undocumented = Counter()
    unexpected = Counter()
    for (kind, server), c in sorted(by_server.items()):
        for s, n in c.items():
            if server != "w" and isinstance(s, int) and s not in DOCUMENTED:
                undocumented[(kind, server, s)] += n
            if server != "w" and isinstance(s, int) and s not in EXPECTED.get(kind, DOCUMENTED):
                unexpected[(kind, server, s)] += n
    status_total = Counter()
    for (kind, server, s), n in STATS.items():
        status_total[s] += n
    print("| statuses seen | " + ", ".join(f"{s}: {n}" for s, n in
                                          sorted(status_total.items(), key=lambda x: str(x[0]))) + " |")
    print("| 503 without Retry-After | " + (", ".join(f"{k[0]}@{k[1]} {n}" for k, n in NO_RETRY_AFTER.items()) or "0") + " |")
    print("| undocumented statuses | " + (", ".join(f"{k} {s}@{v}: {n}" for (k, v, s), n in undocumented.items()) or "none") + " |")
    print("| documented but not expected for the request | " +
          (", ".join(f"{k}@{v} {s}: {n}" for (k, v, s), n in unexpected.items()) or "none") + " |")
    rv = Counter()
    for (kind, _, s), n in STATS.items():
        if kind == "review":
            rv[s] += n
    print(f"| admission reviews | {sum(rv.values())}: signed tag admitted {st.ops['review-allowed']}, "
          f"signed tag denied {st.problems.get('review-signed-denied', 0)}, unsigned tag denied "
          f"{st.ops['review-denied']}, unsigned tag admitted {st.problems.get('review-unsigned-allowed', 0)} |")
    print("| anomalies during the run | " + (", ".join(f"{k} {n}" for k, n in sorted(st.problems.items())) or "none") + " |")
    feeds_ok = feeds.report_rows(st, fres)
    print()
    print("statuses by request kind and server:")
    for (kind, server), c in sorted(by_server.items()):
        print(f"  {kind:13} {server}: " + ", ".join(f"{s} {n}" for s, n in sorted(c.items(), key=lambda x: str(x[0]))))
    for k, v in sorted(SAMPLES.items(), key=lambda x: str(x[0])):
        print(f"  first body of {k}: {v}")
    print("RSS every 30 s, MiB (a, s):")
    mib = lambda kib: f"{kib / 1024:.1f}" if kib else "-"  # "-": the process was down
    print("  " + ", ".join(f"{t:.0f} s {mib(r.get('a'))}/{mib(r.get('s'))}" for t, r in st.rss_trace))
    print("statuses while each fault was on (kind: server status count):")
    by_fault = defaultdict(list)
    for (fault, server, s), n in sorted(FAULT_STATS.items(), key=lambda x: str(x[0])):
        by_fault[fault].append(f"{server} {s} {n}")
    for fault, items in sorted(by_fault.items()):
        print(f"  {fault}: " + ", ".join(items))
    print("pg-disk-full (seconds the space came back, started again, seconds until ready, what PostgreSQL logged):")
    for freed, restarted, took, marks in st.pg_disk_full:
        print(f"  {freed:.0f} s  {'started again' if restarted else 'came back by itself'}  {took:.1f} s  {marks}")
    print("webhook certificate rotations (seconds, old serial, new serial, seconds until served, TLS errors meanwhile):")
    for t, old, new, took, errors, _ in st.cert_rotations:
        print(f"  {t:.0f} s  {old:x} -> {new:x}  {'%.1f' % took if took is not None else 'never'}  {errors or ''}")
    print("webhook cache files corrupted (seconds, file, how, webhook restarted):")
    for c in st.corruptions:
        print(f"  {c[0]:.0f} s  {c[1]}  {c[2]}  {'restarted' if c[3] else 'running'}")
    print("signed tags denied, by repository (first, last second, count, first reason):")
    for gun, (first, last, n, msg) in sorted(st.denials.items()):
        print(f"  {gun}: {first:.0f}-{last:.0f} s, {n}: {msg[:300]}")
    feeds.report_details(st, fres)
    for kind, lines in list(notes.items()) + list(st.problem_samples.items()):
        print(f"{kind}:")
        for line in lines[:10]:
            print("  " + line.replace("\n", "\n  "))
    if res["lost"] or res["forks"] or res["tuf-failed"] or undocumented or NO_RETRY_AFTER:
        ok = False
    if any(p.unexpected_exits for p in st.procs.values()):
        ok = False
    if st.problems.get("review-unsigned-allowed"):
        ok = False
    # A fault that could not be injected, a certificate not picked up, or a load that did not
    # come back leaves the run short of what it claims to have shown.
    for kind in ("fault-injection-failed", "cert-not-reloaded", "cert-reload-restarted",
                 "load-not-recovered", "restart-failed"):
        if st.problems.get(kind):
            ok = False
    ok = ok and feeds_ok
    denied = st.problems.get("review-signed-denied", 0)
    print("RESULT:", "pass" if ok else "FAIL (see above)",
          f"(signed tags denied: {denied}, reported above, not a failure: the webhook fails closed)"
          if denied else "")
    return ok


if __name__ == "__main__":
    sys.exit(main())
