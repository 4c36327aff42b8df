#!/usr/bin/env bash
# Several cnnviz replicas behind nginx with sticky sessions, all on loopback, to try the setup here.
#
#   deploy/run_local.sh                       # http://localhost:8080 until Ctrl-C; replicas on 8601, 8602
#   deploy/run_local.sh --tls                 # https://localhost:8080 with a throwaway self-signed certificate
#   deploy/run_local.sh --agent-api -- python benchmarks/classroom.py --url http://localhost:8080
#
# Options:
#   --replicas N      how many Streamlit processes (default 2)
#   --port P          nginx's port (default 8080); replicas use --base-port, --base-port + 1, ...
#   --base-port B     first replica's port (default 8601)
#   --memory-max SIZE each replica's memory limit (default 1G; 0: none). With a working systemd it is a
#                     cgroup limit (systemd-run --scope -p MemoryMax=SIZE: the replica is stopped beyond it);
#                     without one, a data-size limit (prlimit --data=SIZE: allocations beyond it fail with
#                     MemoryError), which also counts thread stacks: about 200 MB more than resident
#   --tls             serve https with a self-signed certificate made for the host name (openssl)
#   --agent-api       benchmark only: turn on Streamlit's agent API in the replicas, open it through nginx,
#                     and name the answering replica by index in an X-Cnnviz-Replica header (it lets any
#                     local program drive sessions: never on a public server)
#   -- CMD ...        run CMD once everything is healthy, then stop it all and exit with CMD's status;
#                     CMD sees CNNVIZ_URL and CNNVIZ_SERVER_PIDS (the replicas' pids, comma-separated)
#
# The allowed host name is CNNVIZ_HOST (default localhost; several names separated by spaces): nginx
# drops requests for any other name, so open the app as http://localhost:8080, not by IP address.
#
# Needs Debian's nginx (apt-get install -y nginx); it is started from a config in a temporary
# directory, so the system's nginx setup is neither used nor touched. Everything started here is
# stopped on exit, Ctrl-C included. Logs are in the temporary directory while it runs; access.log
# names the replica that answered each request.
set -euo pipefail

replicas=2
port=8080
base_port=8601
memory_max=1G
tls=0
agent_api=0
cmd=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --replicas) replicas="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --base-port) base_port="$2"; shift 2 ;;
        --memory-max) memory_max="$2"; shift 2 ;;
        --tls) tls=1; shift ;;
        --agent-api) agent_api=1; shift ;;
        --) shift; cmd=("$@"); break ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
nginx_bin="$(command -v nginx || true)"
[[ -x "$nginx_bin" ]] || nginx_bin=/usr/sbin/nginx
if [[ ! -x "$nginx_bin" ]]; then
    echo "nginx is not installed: apt-get install -y nginx" >&2
    exit 1
fi
python="${PYTHON:-python}"
read -r -a hosts <<<"${CNNVIZ_HOST:-localhost}"
[[ ${#hosts[@]} -gt 0 ]] || hosts=(localhost)

run_dir="$(mktemp -d -t cnnviz-deploy.XXXXXX)"
chmod 755 "$run_dir"  # nginx's worker processes write their temp files here
pids=()
nginx_pid=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$nginx_pid" ]]; then kill "$nginx_pid" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "$nginx_pid" "${pids[@]}"; do
        [[ -n "$pid" ]] || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ $status -ne 0 ]]; then
        echo "--- logs (exit status $status):" >&2
        tail -n 20 "$run_dir"/*.log >&2 2>/dev/null || true
    fi
    rm -rf "$run_dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

health() {  # URL [HOST] -> what it answers, or nothing. HOST goes into the Host header and the TLS
            # server name; the connection goes to the URL's address. Certificates are not checked.
    "$python" -c 'import http.client, socket, ssl, sys
from urllib.parse import urlsplit
u, host = urlsplit(sys.argv[1]), sys.argv[2] or urlsplit(sys.argv[1]).netloc
sock = socket.create_connection((u.hostname, u.port), timeout=2)
if u.scheme == "https":
    sock = ssl._create_unverified_context().wrap_socket(sock, server_hostname=host.rsplit(":", 1)[0])
c = http.client.HTTPConnection(host, timeout=2)
c.sock = sock
c.request("GET", u.path, headers={"Host": host})
print(c.getresponse().read().decode().strip())' "$1" "${2:-}" 2>/dev/null || true
}

wait_healthy() {  # URL PID NAME [HOST]: until URL answers "ok", at most 120 s
    local url="$1" pid="$2" name="$3" host="${4:-}"
    for _ in $(seq 480); do
        [[ "$(health "$url" "$host")" == ok ]] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited before it became healthy" >&2
            return 1
        fi
        sleep 0.25
    done
    echo "$name did not become healthy in 120 s" >&2
    return 1
}

# Each replica in its own memory limit: a replica that outgrows it is stopped (systemd) or gets
# MemoryError (prlimit), instead of the machine running out of memory with every replica on it.
# (prlimit --as would count address space only reserved: 1.4 GB of it at 0.3 GB resident, measured.)
limit=()
if [[ "$memory_max" != 0 ]]; then
    if systemd-run --quiet --user --scope -p MemoryMax="$memory_max" true 2>/dev/null; then
        limit=(systemd-run --quiet --user --scope -p MemoryMax="$memory_max" --)
    elif systemd-run --quiet --scope -p MemoryMax="$memory_max" true 2>/dev/null; then
        limit=(systemd-run --quiet --scope -p MemoryMax="$memory_max" --)
    elif command -v prlimit >/dev/null; then
        limit=(prlimit --data="$(numfmt --from=iec "$memory_max")" --)
    else
        echo "no systemd-run or prlimit here: replicas run without a memory limit" >&2
    fi
fi

allowed=()
for h in "${hosts[@]}"; do allowed+=(--server.allowedHosts "$h"); done
agent_args=()
[[ $agent_api == 1 ]] && agent_args=(--server.enableAgentApi true --server.agentMaxSessions 500)
servers=()
for ((i = 0; i < replicas; i++)); do
    p=$((base_port + i))
    (cd "$root" && exec "${limit[@]}" "$python" -m streamlit run app.py \
        --server.address 127.0.0.1 --server.port "$p" --server.headless true \
        --server.fileWatcherType none "${allowed[@]}" "${agent_args[@]}") >"$run_dir/replica-$p.log" 2>&1 &
    pids+=("$!")
    servers+=(--server "127.0.0.1:$p")
done
for ((i = 0; i < replicas; i++)); do
    wait_healthy "http://127.0.0.1:$((base_port + i))/_stcore/health" "${pids[$i]}" "replica $((base_port + i))"
done

scheme=http
conf_args=(--run-dir "$run_dir" --listen "127.0.0.1:$port" --user "$(id -un)" "${servers[@]}")
for h in "${hosts[@]}"; do conf_args+=(--host "$h"); done
[[ $agent_api == 1 ]] && conf_args+=(--agent-api)
if [[ $tls == 1 ]]; then
    scheme=https
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=${hosts[0]}" \
        -addext "subjectAltName=DNS:${hosts[0]}" \
        -keyout "$run_dir/tls.key" -out "$run_dir/tls.crt" 2>/dev/null
    conf_args+=(--tls-cert "$run_dir/tls.crt" --tls-key "$run_dir/tls.key")
fi
"$python" "$here/nginx_conf.py" "${conf_args[@]}" -o "$run_dir/nginx.conf"
"$nginx_bin" -t -q -p "$run_dir" -e "$run_dir/error.log" -c "$run_dir/nginx.conf"
"$nginx_bin" -p "$run_dir" -e "$run_dir/error.log" -c "$run_dir/nginx.conf" -g "daemon off;" &
nginx_pid=$!
wait_healthy "$scheme://127.0.0.1:$port/healthz" "$nginx_pid" nginx "${hosts[0]}:$port"

url="$scheme://${hosts[0]}:$port"
pid_list="$(IFS=,; echo "${pids[*]}")"
notes="${limit[*]:+, each under ${limit[0]} $memory_max}${agent_args[*]:+, with the agent API}"
echo "cnnviz: $url -> $replicas replicas on 127.0.0.1:$base_port.. (pids $pid_list)$notes"
export CNNVIZ_URL="$url" CNNVIZ_SERVER_PIDS="$pid_list"
if [[ ${#cmd[@]} -gt 0 ]]; then
    set +e
    (cd "$root" && "${cmd[@]}")
    status=$?
    set -e
    exit "$status"
fi
echo "Ctrl-C stops nginx and the replicas."
wait "$nginx_pid"
