"""deploy/: nginx in front of two Streamlit replicas, on loopback, as deploy/run_local.sh runs it.

Starts two replicas of the app, writes the nginx configuration with deploy/nginx_conf.py (once plain,
once with TLS and a throwaway certificate) and runs Debian's nginx from it, in the foreground, with its
pid file, logs and temp files under tmp_path. Then checks what the outside sees: one allowed host name,
the security headers (on errors too), no version and no internal address, Streamlit's metrics and
agent API closed, the WebSocket upgrade, the upload rate limit and the sticky cookie.

Without nginx (apt-get install -y nginx) these tests skip, or fail when CI is set.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import serve
from tests.torchref import unavailable

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
HOST = "localhost"  # the allowed host name (CNNVIZ_HOST's default)
ATTACKER = "attacker.example"
TIMEOUT = 10  # seconds for one request on loopback
STARTUP = 30  # seconds for nginx to answer /healthz
SECURITY_HEADERS = {
    "content-security-policy": "frame-ancestors 'self'",  # framing only: Streamlit needs its inline scripts
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
STICKY = re.compile(r"^cnnviz_sticky=([0-9a-f]{32})$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proxy:
    """One running nginx: where it listens, its run directory, TLS or not."""

    port: int
    run_dir: Path
    tls: bool
    conf: str = ""

    def connect(self, sni: str = HOST) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        if self.tls:  # the throwaway certificate is not checked: loopback only
            sock = ssl._create_unverified_context().wrap_socket(sock, server_hostname=sni)
        return sock

    def request(self, method: str, path: str, host: str | None = HOST, headers: dict | None = None,
                body: bytes | None = None, sni: str = HOST) -> http.client.HTTPResponse:
        """One request on a new connection to 127.0.0.1, with this Host header (None: none at all)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        c.sock = self.connect(sni)
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        all_headers = {**({"Host": f"{host}:{self.port}"} if host else {}), **(headers or {})}
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        for k, v in all_headers.items():
            c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse()
        r.body = r.read()
        c.close()
        return r

    def log_lines(self, marker: str, count: int) -> list[str]:
        """The access log's lines holding `marker`, once there are `count` of them (nginx writes a line
        after the response; waits for them, at most 10 s)."""
        deadline = time.monotonic() + 10
        while True:
            lines = [line for line in (self.run_dir / "access.log").read_text().splitlines() if marker in line]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


@dataclass
class Stack:
    """Two replicas behind two nginx: one plain, one with TLS."""

    replicas: list[str]  # "127.0.0.1:port" of each replica
    http: Proxy
    https: Proxy | None  # None without openssl to make a certificate


def _start_nginx(nginx: str, run_dir: Path, servers: list[str], tls_files=None) -> tuple[Proxy, subprocess.Popen]:
    run_dir.mkdir(parents=True)
    run_dir.chmod(0o755)  # nginx's workers write their temp files here
    proxy = Proxy(free_port(), run_dir, tls=bool(tls_files))
    args = [sys.executable, str(DEPLOY / "nginx_conf.py"), "--run-dir", str(run_dir),
            "--listen", f"127.0.0.1:{proxy.port}", "--host", HOST, "-o", str(run_dir / "nginx.conf")]
    for s in servers:
        args += ["--server", s]
    if tls_files:
        args += ["--tls-cert", str(tls_files[0]), "--tls-key", str(tls_files[1])]
    subprocess.run(args, check=True, capture_output=True, timeout=30)
    proxy.conf = (run_dir / "nginx.conf").read_text()
    base = [nginx, "-p", str(run_dir), "-e", str(run_dir / "error.log"), "-c", str(run_dir / "nginx.conf")]
    checked = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    with open(run_dir / "nginx.out", "wb") as out:
        proc = subprocess.Popen([*base, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            if proxy.request("GET", "/healthz").body == b"ok":
                return proxy, proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=10)
            log = (run_dir / "error.log").read_text(errors="replace") if (run_dir / "error.log").exists() else ""
            pytest.fail(f"nginx did not answer /healthz (exit code {proc.poll()}):\n{log}", pytrace=False)
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # SIGTERM: nginx's fast shutdown
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _certificate(directory: Path) -> tuple[Path, Path] | None:
    openssl = shutil.which("openssl")
    if not openssl:
        return None
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={HOST}",
                    "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        unavailable("nginx not found: apt-get install -y nginx", "the deploy tests")
    tmp = tmp_path_factory.mktemp("deploy")
    with ExitStack() as stack:
        replicas = []
        for i in range(2):
            log_dir = tmp / f"replica-{i + 1}"
            log_dir.mkdir()
            port = free_port()
            stack.enter_context(serve("app.py", port, log_dir, ("--server.allowedHosts", HOST)))
            replicas.append(f"127.0.0.1:{port}")
        http_proxy, proc = _start_nginx(nginx, tmp / "nginx-http", replicas)
        stack.callback(_stop, proc)
        tls_files = _certificate(tmp)
        https_proxy = None
        if tls_files:
            https_proxy, proc = _start_nginx(nginx, tmp / "nginx-https", replicas, tls_files)
            stack.callback(_stop, proc)
        yield Stack(replicas, http_proxy, https_proxy)


@pytest.fixture
def https(stack) -> Proxy:
    if stack.https is None:
        unavailable("openssl not found (for a throwaway certificate): apt-get install -y openssl", "the TLS checks")
    return stack.https


def websocket_handshake(proxy: Proxy, host: str) -> bytes:
    """Open /_stcore/stream as a browser does; return the answer's head (b"" if the connection closed)."""
    key, scheme = base64.b64encode(os.urandom(16)).decode(), "https" if proxy.tls else "http"
    with proxy.connect() as sock:
        sock.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{proxy.port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Origin: {scheme}://{host}:{proxy.port}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            try:
                chunk = sock.recv(4096)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            head += chunk
    return head


def refused(proxy: Proxy, method: str, path: str, **kw) -> bool:
    """True when nginx closes the connection without an answer (its `return 444`)."""
    try:
        proxy.request(method, path, **kw)
    except (http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError):
        return True
    return False


# ---------------------------------------------------------------- one host name


def test_a_request_for_another_host_name_gets_no_answer(stack):
    p = stack.http
    assert p.request("GET", "/").status == 200
    assert refused(p, "GET", "/", host=ATTACKER)
    assert refused(p, "GET", "/healthz", host=ATTACKER)
    assert refused(p, "GET", "/", host="127.0.0.1")  # by address: not the app's name either
    no_host = p.request("GET", "/", host=None)  # HTTP/1.1 needs one: nginx's own 400, never the app
    assert no_host.status == 400 and b"streamlit" not in no_host.body.lower()


def test_the_websocket_upgrade_works_for_the_app_host_only(stack):
    ok = websocket_handshake(stack.http, HOST)
    assert ok.startswith(b"HTTP/1.1 101 "), ok
    assert b"sec-websocket-accept:" in ok.lower()
    assert b"127.0.0.1" not in ok and not any(r.split(":")[1].encode() in ok for r in stack.replicas)
    assert websocket_handshake(stack.http, ATTACKER) == b""  # closed without an answer


def test_over_tls_another_name_gets_no_handshake_and_the_app_host_works(https):
    assert https.request("GET", "/healthz").body == b"ok"
    with pytest.raises(ssl.SSLError):
        https.connect(sni=ATTACKER)
    assert refused(https, "GET", "/", host=ATTACKER)  # the right name in TLS, another in Host
    assert websocket_handshake(https, HOST).startswith(b"HTTP/1.1 101 ")


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize("path, status", [("/", 200), ("/_stcore/metrics", 404), ("/media/no-such-file", 404)])
def test_security_headers_on_pages_and_errors(stack, path, status):
    r = stack.http.request("GET", path)
    assert r.status == status
    got = {k.lower(): v for k, v in r.getheaders()}
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get_all(name) == [value], (name, got)
    assert "strict-transport-security" not in got  # plain http: no HSTS


def test_over_tls_hsts_is_sent_and_the_sticky_cookie_is_secure(https):
    for path in ("/", "/_stcore/metrics"):
        r = https.request("GET", path)
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value
    _, attrs = _cookie(https.request("GET", "/"))
    assert attrs == {"Path=/", "HttpOnly", "SameSite=Lax", "Secure"}
    xsrf = [c for c in https.request("GET", "/_stcore/health").headers.get_all("Set-Cookie")
            if c.startswith("_streamlit_xsrf=")]  # Streamlit's own cookie, made Secure by nginx
    assert len(xsrf) == 1 and "; secure" in xsrf[0].lower()


def test_no_version_and_no_internal_address_in_any_answer(stack):
    p = stack.http
    answers = [p.request("GET", "/"), p.request("GET", "/healthz"), p.request("GET", "/_stcore/health"),
               p.request("GET", "/_stcore/host-config"), p.request("GET", "/media/no-such-file"),
               p.request("GET", "/_stcore/metrics"), p.request("OPTIONS", "/_stcore/upload_file/s/f"),
               p.request("PUT", f"/_stcore/upload_file/{uuid.uuid4().hex}/f", body=b"x")]
    ports = [r.split(":")[1] for r in stack.replicas]
    for r in answers:
        assert r.headers.get_all("Server") == ["nginx"], r.getheaders()
        assert "X-Cnnviz-Replica" not in r.headers
        for name, value in r.getheaders():
            assert "127.0.0.1" not in value and "uvicorn" not in value.lower(), (name, value)
            assert not any(port in value for port in ports), (name, value)


# ---------------------------------------------------------------- closed paths


@pytest.mark.parametrize("method, path", [
    ("GET", "/_stcore/metrics"), ("GET", "/_stcore/metrics?families=session_events"),
    ("GET", "//_stcore//metrics"), ("GET", "/_stcore/%6Detrics"), ("GET", "/_stcore/x/../metrics"),
    ("GET", "/_stcore/agent/openapi.json"), ("POST", "/_stcore/agent/interact"), ("POST", "/_stcore/agent/mcp"),
])
def test_metrics_and_the_agent_api_are_closed_to_the_public(stack, method, path):
    r = stack.http.request(method, path, body=b"{}" if method == "POST" else None)
    assert r.status == 404
    assert r.headers.get("Content-Type", "").startswith("text/html")  # nginx's own page, not the app's


def test_a_replica_itself_serves_metrics_so_the_proxy_is_what_closes_them(stack):
    host, port = stack.replicas[0].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    c.request("GET", "/_stcore/metrics")
    assert c.getresponse().status == 200
    c.close()


# ---------------------------------------------------------------- uploads


def _upload_limit(conf: str) -> tuple[int, int]:
    """The per-session upload limit in the configuration: (burst, requests a minute)."""
    burst = int(re.search(r"limit_req zone=cnnviz_upload_session burst=(\d+) nodelay;", conf)[1])
    per_minute = int(re.search(r"zone=cnnviz_upload_session:\S+ rate=(\d+)r/m;", conf)[1])
    return burst, per_minute


def test_an_upload_flood_from_one_session_is_refused_after_the_burst(stack):
    p = stack.http
    burst, per_minute = _upload_limit(p.conf)
    session, n = uuid.uuid4().hex, 3 * (burst + 1)
    t0 = time.monotonic()
    answers = [p.request("PUT", f"/_stcore/upload_file/{session}/f{i}", body=b"x" * 1000) for i in range(n)]
    seconds = time.monotonic() - t0
    statuses = [r.status for r in answers]
    # The first burst reaches the app (403: this client has no XSRF token); the rest is refused by nginx,
    # except what the rate lets through while the loop ran, however slow the machine.
    assert statuses[: burst + 1] == [403] * (burst + 1), statuses
    refilled = int(seconds * per_minute / 60) + 1
    assert statuses.count(429) >= n - (burst + 1) - refilled, statuses
    assert set(statuses) <= {403, 429}, statuses
    refusal = next(r for r in answers if r.status == 429)
    for name, value in SECURITY_HEADERS.items():  # nginx's own refusal carries them too
        assert refusal.headers[name] == value
    # Another session on the same address (a classmate behind the same NAT) is not held back.
    assert p.request("PUT", f"/_stcore/upload_file/{uuid.uuid4().hex}/f", body=b"x").status == 403


def _raw_status(proxy: Proxy, head: str) -> int:
    """Send only a request head and return the status line's code (nginx answers before the body)."""
    with proxy.connect() as sock:
        sock.sendall(head.encode())
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_body_size_limits_match_the_app_upload_limit(stack):
    p = stack.http
    max_mib = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    # Streamlit counts maxUploadSize in MiB and allows 1 MiB of multipart framing on top.
    assert re.search(rf"client_max_body_size {max_mib + 1}m;", p.conf)
    too_big = (max_mib + 1) * 1024 * 1024 + 1
    head = (f"PUT /_stcore/upload_file/{uuid.uuid4().hex}/f HTTP/1.1\r\nHost: {HOST}:{p.port}\r\n"
            f"Content-Length: {too_big}\r\n\r\n")
    assert _raw_status(p, head) == 413
    head = f"POST / HTTP/1.1\r\nHost: {HOST}:{p.port}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
    assert _raw_status(p, head) == 413  # nothing but uploads takes a large body


# ---------------------------------------------------------------- sticky sessions


def _cookie(r: http.client.HTTPResponse) -> tuple[str, set[str]] | None:
    """The sticky cookie nginx sets in this answer: (token, attributes), or None."""
    ours = [v for v in r.headers.get_all("Set-Cookie") or () if v.startswith("cnnviz_sticky=")]
    if not ours:
        return None
    assert len(ours) == 1, ours
    first, *attrs = [a.strip() for a in ours[0].split(";")]
    m = STICKY.match(first)
    assert m, ours
    return m[1], set(attrs)


def test_the_sticky_cookie_is_opaque_httponly_lax_and_keeps_a_client_on_one_replica(stack):
    p = stack.http
    token, attrs = _cookie(p.request("GET", "/"))
    assert attrs == {"Path=/", "HttpOnly", "SameSite=Lax"}  # plain http: not Secure
    xsrf = [c for c in p.request("GET", "/_stcore/health").headers.get_all("Set-Cookie")
            if c.startswith("_streamlit_xsrf=")]
    assert len(xsrf) == 1 and "secure" not in xsrf[0].lower()  # a browser would drop it over http
    marker = uuid.uuid4().hex
    for _ in range(8):
        r = p.request("GET", f"/_stcore/health?{marker}", headers={"Cookie": f"cnnviz_sticky={token}"})
        assert r.status == 200 and _cookie(r) is None  # a valid token is kept, not replaced
    lines = p.log_lines(marker, 8)
    assert len(lines) == 8
    assert len({re.search(r"upstream=(\S+)", line)[1] for line in lines}) == 1
    assert all(f"sticky={token}" in line for line in lines)


def test_different_tokens_spread_over_both_replicas(stack):
    p = stack.http
    marker = uuid.uuid4().hex
    for _ in range(32):
        p.request("GET", f"/_stcore/health?{marker}", headers={"Cookie": f"cnnviz_sticky={uuid.uuid4().hex}"})
    used = {re.search(r"upstream=(\S+)", line)[1] for line in p.log_lines(marker, 32)}
    assert used == set(stack.replicas)


@pytest.mark.parametrize("forged", ["127.0.0.1:8601", "1", "../../x", "A" * 32, "0" * 31, "0" * 33])
def test_a_cookie_that_is_not_an_opaque_token_is_ignored_and_replaced(stack, forged):
    p = stack.http
    marker = uuid.uuid4().hex
    r = p.request("GET", f"/_stcore/health?{marker}", headers={"Cookie": f"cnnviz_sticky={forged}"})
    assert r.status == 200
    token, _ = _cookie(r)
    (line,) = p.log_lines(marker, 1)
    assert line.endswith(f"sticky={token}")  # routed by the new token, not by the forged value


# ---------------------------------------------------------------- the files around it


def test_streamlit_runs_without_a_file_watcher():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.match(r"\d+(\.\d+)*", version)[0].split("."))


def _satisfies(version: str, spec: str) -> bool:
    ops = {">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
           ">": lambda a, b: a > b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        op, bound = re.match(r"(>=|<=|==|!=|<|>)\s*(\S+)", clause).groups()
        if not ops[op](_release(version), _release(bound)):
            return False
    return True


def test_the_image_installs_pinned_versions_that_meet_the_requirements():
    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[norm(name)] = version.strip()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(?:\[[A-Za-z0-9_,.-]+\])?(.*)", line).groups()  # name[extra]>=...
        assert norm(name) in pins, f"{name} is not pinned in deploy/constraints.txt"
        assert _satisfies(pins[norm(name)], spec), (name, pins[norm(name)], spec)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "-r requirements.txt -c constraints.txt" in dockerfile
