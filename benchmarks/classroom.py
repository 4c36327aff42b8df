"""A classroom at once: N simulated students walk through cnnviz on one server, at human pace.

    python benchmarks/classroom.py --students 30 --duration 120
    python benchmarks/classroom.py --students 30 --duration 120 --url http://localhost:8080 --pids 1234,1240
    python benchmarks/classroom.py --sweep 10,20,30,40,60 --duration 90

Without --url it starts its own server (`streamlit run app.py` on a free loopback port, with
`--server.enableAgentApi true` on the command line only: the shipped .streamlit/config.toml never
turns the API on), a fresh one for every N of a sweep. With --url the server must already run with
the API on (deploy/run_local.sh --agent-api does that for the nginx setup); --pids names the processes
whose memory and CPU to sum (default: $CNNVIZ_SERVER_PIDS, which run_local.sh sets, else whatever
listens on the URL's port). Only loopback URLs are accepted.

Each student opens a session, walks steps 1..7 with Next and back with Previous, a few seconds
between actions (uniform --think, seeded per student), and on the way: moves sliders and picks
options on each step (a fragment rerun), on the convolution step changes the playground filter
and presses "Put this filter into the network" (a full rerun with an edited model), and sometimes
picks another sample picture. Every interaction is timed from the request until the rerun's
result is complete. Reported: p50, p95 and max response time, errors (HTTP errors, timeouts,
exceptions shown in the page), the server's resident memory (VmRSS from /proc) when idle, at the
peak, after the class, and per session, its CPU per interaction, and the CPU that everything else on
the machine used meanwhile (a shared machine's other load changes the figures a lot).

The agent API, as found in the installed Streamlit 1.67 (streamlit/runtime/agent/*.py and
streamlit/web/server/starlette/starlette_agent_routes.py; marked experimental there):

- `POST /_stcore/agent/interact`, JSON in and out; `GET /_stcore/agent/openapi.json` describes it
  (`info["x-streamlit-agent-api"]` is "available" or "disabled"); with the option off every
  interact request gets 403 `not_available`. Requests carrying an `Origin` header are refused
  unless the origin is listed, so this client sends none.
- Create a session: `{}` (no session_id). The app runs from the start; the answer is a snapshot:
  `{schema_version, session_id, status: "ready"|"error", observed_at, page, pages, query_params,
  tree, actions}`. Pass `session_id` on every later request.
- `tree`: nodes `{type, key?, props, value?, value_schema?, fragment?, support?, data?, children}`
  under the roots main / sidebar / event / bottom; `type` is the st.* command name (`selectbox`,
  `image`, `exception`, ...) and `props` its parameters (a selectbox's `options` are the labels its
  format_func made; a slider's `min_value`/`max_value`). An image is only a media `url`.
- `actions`: what can be done now, `{key, kind: "value"|"trigger", type, label}`. Keys are the
  author's `key=` or a generated `$$ID-...` (our Next/Previous buttons), so find those by label.
- Set widgets: `{"session_id": s, "widget_state": {key: value}}`, value shaped like
  `st.session_state` (a selectbox takes its option label, a slider a number, a segmented control
  one option, a number_input a number). Keys that all sit in one `st.fragment` rerun only that
  fragment, as in a browser. Click a button: `{"session_id": s, "trigger": {"key": k}}`.
- Not settable: `st.data_editor` (`support: "action_unsupported"`: a request gets 400
  `unsupported_element`) and custom components such as streamlit-image-coordinates
  (`browser_required`). So a student here changes the playground filter the way the API allows:
  another "Start from" filter and a new bias (the same fragment rerun and the same maths as typing
  a weight into the grid), then presses "Put this filter into the network".
- Waiting: a request blocks until the run chain settles (reruns included). A run longer than
  `server.agentWaitTimeout` (30 s) answers 202 `wait_timed_out` with the session_id; sending only
  the session_id collects it. One request per session at a time (else 409 `session_busy`).
- Ending: there is no close call; a session ends after `server.agentSessionTTL` (900 s) idle, and
  the server holds at most `server.agentMaxSessions` (100; at the limit 429 `too_many_sessions`),
  so the server started here raises that limit. An agent session is a real AppSession whose
  client buffers the page's messages instead of sending them down a WebSocket, so its memory is
  that of a browser session plus the buffered page.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python benchmarks/classroom.py` from anywhere
    sys.path.insert(0, str(ROOT))

from tests.e2e.helpers import serve  # noqa: E402

TARGET_P95 = 1.0  # seconds
REQUEST_TIMEOUT = 60.0  # seconds for one HTTP request; a 202 is collected within the same interaction
INTERACT = "/_stcore/agent/interact"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TWEAKABLE = {"slider", "selectbox", "segmented_control", "number_input"}
PLAYGROUND = re.compile(r"^pg_")  # the playground is driven on purpose, not by random tweaks
STEPS = 7


# ---------------------------------------------------------------- one session over the agent API


class InteractionError(RuntimeError):
    """An interaction that failed: HTTP error, timeout, or an exception shown on the page."""


@dataclass
class Record:
    kind: str  # open, next, previous, tweak, filter, apply, sample
    seconds: float
    error: str | None = None


def walk(node: dict):
    yield node
    for child in node.get("children", ()):
        yield from walk(child)


class AgentSession:
    """One browserless Streamlit session: send an interaction, time it, keep the latest snapshot."""

    def __init__(self, base_url: str):
        self.url = base_url.rstrip("/") + INTERACT
        self.http = requests.Session()  # keeps the proxy's sticky cookie, like a browser would
        self.http.trust_env = False  # loopback only: never through an HTTP proxy from the environment
        # A browser gets the page as protobuf over the WebSocket, not as this JSON: asking for it
        # uncompressed keeps the server from spending CPU on gzip that no browser session causes.
        self.http.headers["Accept-Encoding"] = "identity"
        # A new connection for each interaction: Streamlit's server (uvicorn) drops a keep-alive connection
        # after 5 s idle, and a student who thought for about 5 s would race that close ("connection
        # reset"), an error a browser never sees (its interactions go over the WebSocket).
        self.http.headers["Connection"] = "close"
        self.session_id: str | None = None
        self.snapshot: dict = {}
        self.replicas: set[str] = set()  # X-Cnnviz-Replica seen (an index; only run_local.sh --agent-api)

    def interact(self, body: dict) -> float:
        """Run one interaction; returns its seconds. Raises InteractionError on any failure."""
        if self.session_id:
            body = {"session_id": self.session_id, **body}
        t0 = time.perf_counter()
        try:
            r = self.http.post(self.url, json=body, timeout=REQUEST_TIMEOUT)
            while r.status_code == 202:  # wait_timed_out: the run goes on; collect it
                self.session_id = r.json().get("session_id", self.session_id)
                r = self.http.post(self.url, json={"session_id": self.session_id}, timeout=REQUEST_TIMEOUT)
            seconds = time.perf_counter() - t0
        except requests.RequestException as e:
            raise InteractionError(f"{type(e).__name__}: {e}") from None
        if "X-Cnnviz-Replica" in r.headers:
            self.replicas.add(r.headers["X-Cnnviz-Replica"])
        if r.status_code != 200:
            raise InteractionError(f"HTTP {r.status_code}: {r.text[:300]}")
        snap = r.json()
        self.session_id, self.snapshot = snap["session_id"], snap
        shown = [n.get("props", {}).get("message", "") for n in walk(snap["tree"]) if n.get("type") == "exception"]
        if snap.get("status") != "ready" or shown:
            raise InteractionError(f"app error (status {snap.get('status')}): {' | '.join(shown)[:300]}")
        return seconds

    def actions(self) -> list[dict]:
        return self.snapshot.get("actions", [])

    def action(self, label: str | None = None, key: str | None = None) -> dict | None:
        for a in self.actions():
            if (label is None or a.get("label", "").startswith(label)) and (key is None or a["key"] == key):
                return a
        return None

    def node(self, key: str) -> dict | None:
        return next((n for n in walk(self.snapshot.get("tree", {})) if n.get("key") == key), None)

    def main_keys(self) -> set[str]:
        """Keys of the elements in the page's main area (not the sidebar)."""
        main = next((c for c in self.snapshot.get("tree", {}).get("children", ()) if c.get("type") == "main"), {})
        return {n["key"] for n in walk(main) if "key" in n}

    def step(self) -> int:
        header = next((n for n in walk(self.snapshot.get("tree", {})) if n.get("type") == "header"), None)
        m = re.match(r"(\d+)\.", (header or {}).get("props", {}).get("body", ""))
        return int(m.group(1)) if m else 0


def random_value(node: dict, rng: random.Random):
    """A legal value for a slider, selectbox, segmented control or number input, different from now."""
    props, now = node.get("props", {}), node.get("value")
    if "options" in props:
        options = [o for o in props["options"] if o != now] or props["options"]
        value = rng.choice(options)
    else:
        lo, hi = props.get("min_value", 0), props.get("max_value", 10)
        if node.get("value_schema", {}).get("type") == "integer":
            value = rng.randint(int(lo), int(hi))
        else:
            value = round(rng.uniform(max(lo, -1.0), min(hi, 1.0)), 2)
    return [value] if node.get("value_schema", {}).get("type") == "array" else value


# ---------------------------------------------------------------- a student


@dataclass
class Student:
    """Walks the steps forward and back until `until`, recording every interaction."""

    base_url: str
    seed: int
    until: float  # time.monotonic() deadline: no new interaction starts after it
    think: tuple[float, float]
    records: list[Record] = field(default_factory=list)

    def run(self) -> None:
        self.rng = random.Random(self.seed)
        self.s = AgentSession(self.base_url)
        if not self.do("open", {}):
            return
        forward = True
        while time.monotonic() < self.until:
            step = self.s.step()
            self.on_step(step)
            if forward and step >= STEPS or not forward and step <= 1:
                forward = not forward
            if not self.press("Next" if forward else "Previous", "next" if forward else "previous"):
                return

    def on_step(self, step: int) -> None:
        """What a student does on a step before moving on: a few tweaks, the playground on step 2."""
        for _ in range(self.rng.choice((0, 1, 1, 2))):
            self.tweak()
        if step == 2 and self.rng.random() < 0.8:
            self.playground()
        if self.rng.random() < 0.1:
            self.set("sample", "sample_choice")

    def tweak(self) -> None:
        main = self.s.main_keys()
        choices = [a for a in self.s.actions() if a["kind"] == "value" and a["type"] in TWEAKABLE
                   and a["key"] in main and not PLAYGROUND.match(a["key"])]
        if choices:
            self.set("tweak", self.rng.choice(choices)["key"])

    def playground(self) -> None:
        """Another starting filter, a new bias, then put it into the network."""
        self.set("filter", "pg_preset")
        bias = self.s.action(label="Bias")
        if bias:
            self.set("filter", bias["key"])
        self.press("Put this filter", "apply", required=False)

    def set(self, kind: str, key: str) -> bool:
        node = self.s.node(key)
        if node is None or self.s.action(key=key) is None:
            return True  # not on this page (any more): nothing to do
        return self.do(kind, {"widget_state": {key: random_value(node, self.rng)}})

    def press(self, label: str, kind: str, required: bool = True) -> bool:
        a = self.s.action(label=label)
        if a is not None:
            return self.do(kind, {"trigger": {"key": a["key"]}})
        if required:  # Next and Previous are always there on the way: their absence is an error
            time.sleep(self.rng.uniform(*self.think))
            self.records.append(Record(kind, float("nan"), f"no {label!r} button on step {self.s.step()}"))
        return time.monotonic() < self.until

    def do(self, kind: str, body: dict) -> bool:
        """Think, then act; False ends this student (the session is gone or the deadline passed)."""
        if kind != "open":
            time.sleep(self.rng.uniform(*self.think))
            if time.monotonic() >= self.until:
                return False
        try:
            self.records.append(Record(kind, self.s.interact(body)))
        except InteractionError as e:
            self.records.append(Record(kind, float("nan"), str(e)))
            return self.s.session_id is not None and "unknown_session" not in str(e)
        return True


# ---------------------------------------------------------------- server memory


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, from /proc (0 if it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def listener_pids(port: int) -> list[int]:
    """Processes with a listening TCP socket on `port` (root sees every process's sockets)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":  # 0A: LISTEN
                inodes.add(cols[9])
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if any(os.readlink(f).removeprefix("socket:[").rstrip("]") in inodes for f in (d / "fd").iterdir()):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc (0 if it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def machine_busy_seconds() -> float:
    """CPU seconds all processes on this machine have used since boot (every core), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class MemoryWatch:
    """Samples the summed RSS of `pids` twice a second in the background; keeps the peak."""

    def __init__(self, pids: list[int]):
        self.pids, self.peak, self._stop = pids, 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def now(self) -> int:
        return sum(rss_bytes(p) for p in self.pids)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, self.now())

    def __enter__(self):
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


# ---------------------------------------------------------------- one class, many classes


@dataclass
class Result:
    students: int
    records: list[Record]
    rss_idle: int
    rss_peak: int
    rss_end: int
    wall: float
    cpu: float  # server CPU seconds used during the class
    client_cpu: float  # this script's own CPU seconds meanwhile (it shares the machine)
    others_cpu: float  # CPU seconds every other process on the machine used meanwhile
    replicas: list[set[str]]  # per student: the replicas that answered it (behind deploy/'s nginx)

    @property
    def times(self) -> list[float]:
        return sorted(r.seconds for r in self.records if r.error is None)

    @property
    def errors(self) -> list[Record]:
        return [r for r in self.records if r.error is not None]

    def percentile(self, q: float, kind: str | None = None) -> float:
        t = sorted(r.seconds for r in self.records if r.error is None and (kind is None or r.kind == kind))
        if not t:
            return float("nan")
        return t[min(len(t) - 1, round(q / 100 * (len(t) - 1)))]

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def ok(self) -> bool:
        return bool(self.times) and self.p95 <= TARGET_P95 and not self.errors


def warm_up(base_url: str, servers: int = 1) -> None:
    """Sessions walk every step once, so imports and shared caches are loaded before we measure; behind
    a proxy, until every one of the `servers` replicas has served one (at most 4 sessions per replica)."""
    seen: set[str] = set()
    for _ in range(4 * servers):
        s = AgentSession(base_url)
        s.interact({})
        for _ in range(STEPS - 1):
            s.interact({"trigger": {"key": s.action(label="Next")["key"]}})
        seen |= s.replicas
        if len(seen) >= servers or not s.replicas:
            return


def run_class(base_url: str, pids: list[int], n: int, duration: float, think: tuple[float, float],
              ramp: float, seed: int) -> Result:
    warm_up(base_url, len(pids))
    time.sleep(1.0)
    watch = MemoryWatch(pids)
    rss_idle = watch.now()
    cpu0, client0, busy0 = sum(cpu_seconds(p) for p in pids), time.process_time(), machine_busy_seconds()
    t0 = time.monotonic()
    students = [Student(base_url, seed * 1000 + k, t0 + duration, think) for k in range(n)]
    rng = random.Random(seed)
    starts = sorted(rng.uniform(0, ramp) for _ in students)  # students do not all click at the same instant

    def start(student: Student, delay: float) -> None:
        time.sleep(delay)
        student.run()

    threads = [threading.Thread(target=start, args=(s, d), daemon=True) for s, d in zip(students, starts)]
    with watch:
        for t in threads:
            t.start()
        for t in threads:
            t.join(duration + think[1] + 4 * REQUEST_TIMEOUT)
    wall = time.monotonic() - t0
    cpu, client_cpu = sum(cpu_seconds(p) for p in pids) - cpu0, time.process_time() - client0
    others = machine_busy_seconds() - busy0 - cpu - client_cpu  # nginx too, behind deploy/'s proxy
    time.sleep(1.0)
    return Result(n, [r for s in students for r in s.records], rss_idle, watch.peak, watch.now(), wall, cpu, client_cpu,
                  max(0.0, others),
                  [s.s.replicas for s in students if hasattr(s, "s")])


def mb(n: float) -> str:
    return f"{n / 2**20:.0f} MB"


def report(res: Result) -> None:
    n, t = res.students, res.times
    print(f"\n== {n} students, {res.wall:.0f} s, {len(res.records)} interactions "
          f"({len(res.records) / res.wall:.1f}/s), {len(res.errors)} errors")
    print(f"{'kind':>9} {'count':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for kind in ("open", "next", "previous", "tweak", "filter", "apply", "sample"):
        k = [r.seconds for r in res.records if r.kind == kind and r.error is None]
        if k:
            print(f"{kind:>9} {len(k):6d} {res.percentile(50, kind):7.3f} {res.percentile(95, kind):7.3f} "
                  f"{max(k):7.3f}")
    if any(res.replicas):
        counts = Counter(next(iter(r)) for r in res.replicas if len(r) == 1)
        moved = sum(len(r) > 1 for r in res.replicas)
        print(f"replicas (sticky sessions): students per replica {dict(sorted(counts.items()))}, "
              f"students answered by more than one replica: {moved}")
    for e in res.errors[:5]:
        print(f"  error ({e.kind}): {e.error}")
    print(f"server CPU: {res.cpu:.1f} s in {res.wall:.0f} s ({res.cpu / res.wall:.0%} of one core), "
          f"{1000 * res.cpu / max(1, len(res.records)):.0f} ms per interaction; this client: {res.client_cpu:.1f} s; "
          f"everything else on the machine: {res.others_cpu / res.wall:.2f} of {os.cpu_count()} cores")
    per = (res.rss_peak - res.rss_idle) / n
    print(f"memory: idle {mb(res.rss_idle)}, peak {mb(res.rss_peak)}, after the class {mb(res.rss_end)}, "
          f"per session {(per / 2**20):.1f} MB ((peak - idle) / {n}; held after the class: "
          f"{(res.rss_end - res.rss_idle) / n / 2**20:.1f} MB)")
    if t:
        print(f"SUMMARY students={n} interactions={len(t)} p50={res.percentile(50):.3f}s p95={res.p95:.3f}s "
              f"max={t[-1]:.3f}s errors={len(res.errors)} rss_idle={mb(res.rss_idle)} rss_peak={mb(res.rss_peak)} "
              f"per_session={per / 2**20:.1f}MB target(p95<={TARGET_P95:g}s, 0 errors)="
              f"{'met' if res.ok else 'MISSED'}")


# ---------------------------------------------------------------- command line


def check_loopback(url: str) -> str:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"--url must be a loopback address ({', '.join(sorted(LOOPBACK))}), not {host!r}")
    return url.rstrip("/")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_api_available(base_url: str) -> bool:
    try:
        doc = requests.get(base_url + "/_stcore/agent/openapi.json", timeout=10).json()
    except (requests.RequestException, ValueError):
        return False
    return doc.get("info", {}).get("x-streamlit-agent-api") == "available"


def own_server(n: int, log_dir: Path, extra: str = ""):
    """A fresh `streamlit run app.py` with the agent API on, for this run only (plus `extra` options)."""
    args = ("--server.enableAgentApi", "true", "--server.agentMaxSessions", str(max(100, 2 * n + 10)),
            *shlex.split(extra))
    return serve("app.py", free_port(), log_dir, extra_args=args)


def one(n: int, args, log_dir: Path) -> Result:
    with ExitStack() as stack:
        url = args.url or stack.enter_context(own_server(n, log_dir, args.server_args))
        if not agent_api_available(url):
            raise SystemExit(f"{url} does not serve the agent API: start it with --server.enableAgentApi true")
        port = urlsplit(url).port or 80
        env_pids = os.environ.get("CNNVIZ_SERVER_PIDS") if args.url else None  # set by deploy/run_local.sh
        pids = args.pids or ([int(x) for x in env_pids.split(",")] if env_pids else listener_pids(port))
        names = [Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[:4] for p in pids if Path(f"/proc/{p}").exists()]
        print(f"server {url}; memory of pid(s) {pids}: {[b' '.join(c).decode()[:60] for c in names]}")
        return run_class(url, pids, n, args.duration, args.think, min(args.ramp, args.duration / 2), args.seed)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--duration", type=float, default=120.0, help="seconds the class runs (default 120)")
    p.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")], default=None,
                   help="comma-separated class sizes, e.g. 10,20,30,40,60; prints the largest meeting the target")
    p.add_argument("--url", type=check_loopback, default=None, help="a running server (agent API on); loopback only")
    p.add_argument("--pids", type=lambda s: [int(x) for x in s.split(",")], default=None,
                   help="server process ids whose RSS and CPU to sum (default: $CNNVIZ_SERVER_PIDS, which "
                   "deploy/run_local.sh sets, else the process listening on the URL's port)")
    p.add_argument("--think", type=lambda s: tuple(float(x) for x in s.split(",")), default=(2.0, 6.0),
                   help="min,max seconds a student waits between actions (default 2,6)")
    p.add_argument("--ramp", type=float, default=10.0, help="students start spread over this many seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--server-args", default="", help='more options for the server started here, e.g. '
                   '"--runner.postScriptGC true" to compare a setting')
    args = p.parse_args(argv)
    sizes = args.sweep or [args.students]
    if max(sizes) > 200 or args.duration > 1800:
        raise SystemExit("at most 200 students and 1800 s per run")
    results = []
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        for n in sizes:
            log_dir = Path(tmp) / f"n{n}"
            log_dir.mkdir()
            res = one(n, args, log_dir)
            report(res)
            results.append(res)
    if args.sweep:
        print("\n== sweep")
        for r in results:
            print(f"N={r.students:4d} p50={r.percentile(50):.3f}s p95={r.p95:.3f}s errors={len(r.errors)} "
                  f"per_session={(r.rss_peak - r.rss_idle) / r.students / 2**20:.1f}MB "
                  f"other_load={r.others_cpu / r.wall:.2f}cores {'ok' if r.ok else 'MISSED'}")
        good = [r.students for r in results if r.ok]
        print(f"LARGEST N meeting p95 <= {TARGET_P95:g} s with 0 errors: {max(good) if good else 'none'}"
              + ("" if not good or max(good) < max(sizes) else " (the largest tried; try more)"))
    return 1 if any(r.errors for r in results) else 0  # a missed target is reported, not an exit code


if __name__ == "__main__":
    sys.exit(main())
