"""Write a complete nginx.conf for cnnviz from deploy/nginx.conf.template.

    python deploy/nginx_conf.py --run-dir DIR --listen 127.0.0.1:8080 \\
        --server 127.0.0.1:8601 --server 127.0.0.1:8602 > DIR/nginx.conf

The allowed host name comes from --host (repeat it for several names) or else from CNNVIZ_HOST
(names separated by spaces), default `localhost`. --tls-cert and --tls-key turn on TLS (and with it the
cookie's `Secure` and HSTS). --agent-api is for the class benchmark on loopback only: it opens
Streamlit's agent API through nginx and names the answering replica by index (X-Cnnviz-Replica).
deploy/run_local.sh and tests/test_deploy.py both write their configuration with this. Standard
library only.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("nginx.conf.template")
DEFAULT_HOST = "localhost"
SERVER_OPTIONS = "max_fails=3 fail_timeout=10s"

# What may go into the configuration: nothing that could end a directive or start another one.
_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")
_ADDRESS = re.compile(r"^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$")
_PATH = re.compile(r"^/[^\s;{}'\"$#]*$")


def _check(pattern: re.Pattern, value: str, what: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"not a valid {what}: {value!r}")
    return value


def hosts_from_env(env=os.environ) -> list[str]:
    """The host names in CNNVIZ_HOST (separated by spaces), or the default, `localhost`."""
    return env.get("CNNVIZ_HOST", "").split() or [DEFAULT_HOST]


def render(run_dir: str, listen: str, servers: list[str], hosts: list[str], user: str,
           tls: tuple[str, str] | None = None, agent_api: bool = False) -> str:
    """The template with every @...@ placeholder filled in; raises ValueError on a bad value."""
    if not servers:
        raise ValueError("at least one --server is needed")
    if not hosts:
        raise ValueError("at least one host name is needed")
    for host in hosts:
        _check(_HOST, host, "host name")
    for server in servers:
        _check(_ADDRESS, server, "server address (host:port)")
    _check(_ADDRESS, listen, "listen address (host:port)")
    _check(_PATH, run_dir, "run directory (an absolute path)")
    _check(re.compile(r"^[A-Za-z0-9_.-]+$"), user, "user name")
    tls_lines = ""
    if tls:
        cert, key = (_check(_PATH, p, "certificate path") for p in tls)
        listen += " ssl"
        tls_lines = (f"        ssl_certificate {cert};\n"
                     f"        ssl_certificate_key {key};\n"
                     "        ssl_protocols TLSv1.2 TLSv1.3;\n")
    agent = ("            proxy_pass http://cnnviz;\n"
             "            proxy_read_timeout 120s;  # the agent API waits up to 30 s for a run"
             if agent_api else "            return 404;")
    index = "\n".join(f'        "{s}" {i};' for i, s in enumerate(servers, 1)) if agent_api else ""
    fills = {
        "@USER@": user,
        "@RUN_DIR@": run_dir,
        "@LISTEN@": listen,
        "@HOST@": " ".join(hosts),
        "@SERVERS@": "\n".join(f"        server {s} {SERVER_OPTIONS};" for s in servers),
        "@TLS@\n": tls_lines,
        "@AGENT_API@": agent,
        "@REPLICA_INDEX@\n": index + "\n" if index else "",
    }
    text = TEMPLATE.read_text()
    for key, value in fills.items():
        if key not in text:
            raise ValueError(f"{key.strip()} is missing from {TEMPLATE.name}")
        text = text.replace(key, value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise ValueError(f"placeholders left unfilled: {sorted(set(left))}")
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", required=True, help="absolute path: pid file, logs, temp files")
    ap.add_argument("--listen", default="127.0.0.1:8080", help="address:port nginx listens on")
    ap.add_argument("--server", action="append", default=[], required=True,
                    help="a replica's address:port (repeat for each)")
    ap.add_argument("--host", action="append", default=[],
                    help=f"an allowed host name (repeat for several; default: CNNVIZ_HOST or {DEFAULT_HOST})")
    ap.add_argument("--user", default=getpass.getuser(), help="the user nginx's workers run as (when root)")
    ap.add_argument("--tls-cert", help="PEM certificate (chain): serve https")
    ap.add_argument("--tls-key", help="its PEM private key")
    ap.add_argument("--agent-api", action="store_true",
                    help="loopback benchmark only: open Streamlit's agent API, name replicas by index")
    ap.add_argument("-o", "--output", help="write here instead of to stdout")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    try:
        text = render(args.run_dir, args.listen, args.server, args.host or hosts_from_env(), args.user,
                      (args.tls_cert, args.tls_key) if args.tls_cert else None, args.agent_api)
    except ValueError as e:
        ap.error(str(e))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
