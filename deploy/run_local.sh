#!/usr/bin/env bash
# Several cnnviz replicas behind nginx with sticky sessions, all on loopback, to try the setup here.
#
#   deploy/run_local.sh                       # http://127.0.0.1:8080 until Ctrl-C; replicas on 8601, 8602
#   deploy/run_local.sh --agent-api -- python benchmarks/classroom.py --url http://127.0.0.1:8080
#
# Options:
#   --replicas N    how many Streamlit processes (default 2)
#   --port P        nginx's port (default 8080); replicas use --base-port, --base-port + 1, ...
#   --base-port B   first replica's port (default 8601)
#   --agent-api     also turn on Streamlit's agent API in the replicas (for benchmarks/classroom.py
#                   only: it lets any local program drive sessions; never on a public server)
#   -- CMD ...      run CMD once everything is healthy, then stop it all and exit with CMD's status;
#                   CMD sees CNNVIZ_URL and CNNVIZ_SERVER_PIDS (the replicas' pids, comma-separated)
#
# Needs Debian's nginx (apt-get install -y nginx); it is started from a config in a temporary
# directory, so the system's nginx setup is neither used nor touched. Everything started here is
# stopped on exit, Ctrl-C included. Logs are in the temporary directory while it runs.
set -euo pipefail

replicas=2
port=8080
base_port=8601
agent_args=()
cmd=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --replicas) replicas="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --base-port) base_port="$2"; shift 2 ;;
        --agent-api) agent_args=(--server.enableAgentApi true --server.agentMaxSessions 500); shift ;;
        --) shift; cmd=("$@"); break ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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

health() {  # URL -> what it answers, or nothing
    "$python" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' "$1" 2>/dev/null || true
}

wait_healthy() {  # URL PID NAME: until URL answers "ok", at most 120 s
    local url="$1" pid="$2" name="$3"
    for _ in $(seq 480); do
        [[ "$(health "$url")" == ok ]] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited before it became healthy" >&2
            return 1
        fi
        sleep 0.25
    done
    echo "$name did not become healthy in 120 s" >&2
    return 1
}

servers=""
for ((i = 0; i < replicas; i++)); do
    p=$((base_port + i))
    (cd "$root" && exec "$python" -m streamlit run app.py \
        --server.address 127.0.0.1 --server.port "$p" --server.headless true \
        --server.fileWatcherType none "${agent_args[@]}") >"$run_dir/replica-$p.log" 2>&1 &
    pids+=("$!")
    servers+="        server 127.0.0.1:$p max_fails=3 fail_timeout=10s;"$'\n'
done
for ((i = 0; i < replicas; i++)); do
    wait_healthy "http://127.0.0.1:$((base_port + i))/_stcore/health" "${pids[$i]}" "replica $((base_port + i))"
done

conf="$(<"$here/nginx.conf.template")"
conf="${conf//@USER@/$(id -un)}"
conf="${conf//@RUN_DIR@/$run_dir}"
conf="${conf//@LISTEN@/127.0.0.1:$port}"
conf="${conf//@SERVERS@/${servers%$'\n'}}"
printf '%s\n' "$conf" >"$run_dir/nginx.conf"
"$nginx_bin" -t -q -p "$run_dir" -e "$run_dir/error.log" -c "$run_dir/nginx.conf"
"$nginx_bin" -p "$run_dir" -e "$run_dir/error.log" -c "$run_dir/nginx.conf" -g "daemon off;" &
nginx_pid=$!
wait_healthy "http://127.0.0.1:$port/healthz" "$nginx_pid" nginx

pid_list="$(IFS=,; echo "${pids[*]}")"
echo "cnnviz: http://127.0.0.1:$port -> $replicas replicas on 127.0.0.1:$base_port.. (pids $pid_list)" \
     "${agent_args[*]:+with the agent API}"
export CNNVIZ_URL="http://127.0.0.1:$port" CNNVIZ_SERVER_PIDS="$pid_list"
if [[ ${#cmd[@]} -gt 0 ]]; then
    set +e
    (cd "$root" && "${cmd[@]}")
    status=$?
    set -e
    exit "$status"
fi
echo "Ctrl-C stops nginx and the replicas."
wait "$nginx_pid"
