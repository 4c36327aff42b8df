"""Measure an upload flood: one client PUTs many files straight to Streamlit's upload endpoint.

    python deploy/upload_flood.py --url http://localhost:8080 --files 60 --mib 10 --pids 1234,1240
    python deploy/upload_flood.py --url http://localhost:8080 --sessions 60 --files 1 --mib 3   # a class

It opens a real session (or --sessions of them) the way a browser does (the health check for the XSRF
cookie, the WebSocket, then the first run, which names the session), then PUTs the files one after
another to /_stcore/upload_file/<session>/<file>, as a script holding the session's XSRF token could,
and prints how many got through (204), how many were refused, and the replicas' memory (VmRSS) before
and after.
With --pids the sum over those processes is reported (deploy/run_local.sh exports them as
CNNVIZ_SERVER_PIDS). Loopback only. Needs the `websockets` package (a dependency of Streamlit).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import os
import ssl
import sys
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
XSRF_COOKIE = "_streamlit_xsrf"


def rss_mb(pids: list[int]) -> float:
    """The summed resident memory of `pids`, in MB (from /proc/PID/status)."""
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


class Client:
    """HTTP to the app's URL over loopback, keeping its cookies like a browser."""

    def __init__(self, url: str):
        self.url = urlsplit(url)
        if self.url.hostname not in LOOPBACK:
            raise SystemExit(f"--url must be on loopback ({', '.join(sorted(LOOPBACK))}), not {self.url.hostname!r}")
        self.cookies: dict[str, str] = {}

    def connection(self) -> http.client.HTTPConnection:
        host, port = self.url.hostname, self.url.port or (443 if self.url.scheme == "https" else 80)
        if self.url.scheme == "https":  # a throwaway certificate on loopback: not checked
            return http.client.HTTPSConnection(host, port, timeout=60, context=ssl._create_unverified_context())
        return http.client.HTTPConnection(host, port, timeout=60)

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
        c = self.connection()
        try:
            c.request(method, path, body=body, headers={"Cookie": self.cookie_header(), **(headers or {})})
            r = c.getresponse()
            r.read()
            for value in r.headers.get_all("Set-Cookie") or ():
                for k, morsel in SimpleCookie(value).items():
                    self.cookies[k] = morsel.value
            return r.status
        except (ConnectionError, http.client.HTTPException) as e:  # nginx may close a refused upload early
            return {ConnectionResetError: -1, BrokenPipeError: -2}.get(type(e), -3)
        finally:
            c.close()

    @contextlib.contextmanager
    def session(self):
        """Open a session as a browser would; yield its id while its WebSocket stays open."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from websockets.sync.client import connect

        status = self.request("GET", "/_stcore/health")  # as the page does first: sets the XSRF cookie
        if status != 200 or XSRF_COOKIE not in self.cookies:
            raise SystemExit(f"GET /_stcore/health answered {status} without an XSRF cookie")
        scheme = "wss" if self.url.scheme == "https" else "ws"
        ctx = ssl._create_unverified_context() if scheme == "wss" else None
        with connect(f"{scheme}://{self.url.netloc}/_stcore/stream", ssl=ctx, open_timeout=30,
                     subprotocols=["streamlit", self.cookies[XSRF_COOKIE]],
                     origin=f"{self.url.scheme}://{self.url.netloc}",
                     additional_headers={"Cookie": self.cookie_header()}) as ws:
            msg = BackMsg()
            msg.rerun_script.query_string = ""
            ws.send(msg.SerializeToString())
            session_id = None
            for _ in range(10000):  # until the first run has finished, so it is in "before"
                fwd = ForwardMsg()
                fwd.ParseFromString(ws.recv(timeout=60))
                kind = fwd.WhichOneof("type")
                if kind == "new_session":
                    session_id = fwd.new_session.initialize.session_id
                elif kind == "script_finished" and session_id:
                    yield session_id
                    return
            raise SystemExit("the app's first run never finished")


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="flood.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the app through nginx (or a replica), on loopback")
    ap.add_argument("--files", type=int, default=60, help="files each session uploads")
    ap.add_argument("--mib", type=float, default=10.0, help="size of each file in MiB")
    ap.add_argument("--sessions", type=int, default=1,
                    help="sessions (each with its own cookies, like students on one address) (default 1)")
    ap.add_argument("--pids", default=os.environ.get("CNNVIZ_SERVER_PIDS", ""),
                    help="comma-separated replica pids whose memory to report (default: $CNNVIZ_SERVER_PIDS)")
    args = ap.parse_args(argv)
    pids = [int(p) for p in args.pids.split(",") if p.strip()]

    body, content_type = multipart(os.urandom(int(args.mib * 1024 * 1024) - 200))
    counts = collections.Counter()
    with contextlib.ExitStack() as stack:
        students = [Client(args.url) for _ in range(args.sessions)]
        sessions = [stack.enter_context(c.session()) for c in students]
        before = rss_mb(pids) if pids else None
        t0 = time.perf_counter()
        for client, session in zip(students, sessions):
            headers = {"X-Xsrftoken": client.cookies[XSRF_COOKIE], "Content-Type": content_type,
                       "Origin": f"{client.url.scheme}://{client.url.netloc}"}
            for _ in range(args.files):
                counts[client.request("PUT", f"/_stcore/upload_file/{session}/{uuid.uuid4().hex}", body,
                                      headers)] += 1
        seconds = time.perf_counter() - t0
        after = rss_mb(pids) if pids else None
    total = args.sessions * args.files
    print(f"{args.sessions} session(s) x {args.files} PUTs of {args.mib:g} MiB in {seconds:.1f} s: "
          + ", ".join(f"{n} x {status}" for status, n in sorted(counts.items())))
    print(f"stored (204): {counts[204]}; refused: {total - counts[204]}")
    if pids:
        print(f"replicas' memory (VmRSS, pids {args.pids}): {before:.0f} MB before, {after:.0f} MB after "
              f"(+{after - before:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
