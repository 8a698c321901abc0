#!/usr/bin/env bash
# Side-by-side comparison of ringlb and HAProxy on this machine, in one run.
#
#   bench/compare.sh [--quick] [--rounds N] [--only w1,w2] [--out FILE] [--threads N]
#                    [--cpu-cap PCT] [--check] [--perf DIR] [--ringlb PATH] [--bench PATH]
#                    [--ab 'KEY = VALUE']
#
# Starts the targets (ringlb-bench's own sink/echo, iperf3, redis-server), ringlb
# (`--shards N`) and HAProxy 2.6 (`nbthread N`) with equivalent configs — HAProxy at
# its best for each workload: splice-request/-response and the same 1 MiB pipes as
# ringlb where it forwards streams (iperf3, sink), no splicing where it forwards
# small messages (echo, redis: forced splicing costs HAProxy a splice pair and an
# EAGAIN per message there) — then runs every workload interleaved (ringlb, HAProxy, ringlb, …) for N
# rounds and prints, per workload: median and min–max per proxy, ringlb/HAProxy,
# and the direct (no proxy) figure as the ceiling; CPU seconds per GB forwarded for
# the stream workloads, memory per idle connection and how often the proxy wakes
# while holding them. Proxies run on CPU 0, load
# generators and targets on the other CPUs.
#
# --check exits 1 if any workload lacks a figure for either proxy (CI runs
# `--quick --check` so the script cannot rot; its numbers there are not judged).
#
# A/B of one tune key: bench-rr (long-lived connections), bench-connrate (a
# session per connection), http-keepalive, redis-get and redis-set also run
# through a second ringlb whose `tune` adds `--ab 'KEY = VALUE'`, interleaved
# with the first (ringlb, ringlb B, HAProxy, …), and the report gives A/B as a
# ratio. The default, `stats-counters = false` (no traffic counters, rates or
# latency histograms), says what counting costs; `--ab 'ring-copy = false'`
# what the io_uring copy path gives against poll + recv/send.
#
# --perf DIR adds, before the rounds of each workload, one run per proxy under
# `perf record -g` (not counted: the sampling slows it), keeps the recordings in
# DIR and prints where each proxy's CPU went: kernel or user space, and the share
# of samples under each system call (nested, so the rows overlap).
#
# Cost per request (small-message workloads: redis-*, bench-rr): every measured
# run counts the proxy's system calls (`perf stat -e raw_syscalls:sys_enter -p`,
# when perf works here) and its user and system CPU time separately
# (/proc/PID/stat). The report splits CPU per request into what the proxy
# controls — user-space time plus the entry/exit cost of the system calls it
# makes (syscalls × the cost of a null syscall, `perf bench syscall basic`,
# measured at the start) — and the rest, the kernel's TCP/loopback work that any
# proxy pays for the same bytes.
#
# TLS (the same certificates for both, made here with openssl: ECDSA P-256, and
# RSA-2048 for tls-handshake-rsa; a mode-http front on each proxy, to the same
# nginx): tls-handshake is full TLS 1.3 handshakes per second
# (`ringlb-bench handshake`: a rustls client with 16 handshakes in flight;
# connect, handshake, close_notify, the proxy's close; no request, so no server
# connection either), tls-handshake-rsa the same with the RSA certificate,
# tls-resume resumed TLS 1.2 handshakes (`handshake --resume`: a ticket for
# both). A ringlb-bench without the handshake mode falls back to `openssl s_time`
# (`-new`, `-reuse -tls1_2`; one handshake in flight, which cannot saturate a
# proxy). https-keepalive is wrk over HTTPS on 50 kept-alive connections,
# https-1m the same for a 1 MiB page on 8 connections (TLS bulk, down),
# https-upload a 1 MiB POST on 8 connections (TLS bulk, up; nginx drops the
# body), http-upload the same in plain HTTP. On 2
# cores the client's handshake costs about what the server's does, so compare
# them with --cpu-cap, where the proxy is the bottleneck.
#
# --cpu-cap PCT gives each proxy the same CPU budget, PCT % of one CPU per
# shard/thread (a cgroup CPU-bandwidth limit, 10 ms period; needs root). On a
# machine whose load generators saturate before the proxy does (2 cores: one for
# the proxy, one for the load), both proxies reach the load's ceiling and the
# throughput ratio says nothing; under an equal cap the proxy is the bottleneck and
# the ratio is the one that matters when a proxy core is saturated.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 quick=0 only="" out="" threads=1 cap="" check=0 perfdir="" ab_tune="stats-counters = false"
ringlb=target/release/ringlb
bench=target/release/ringlb-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; rounds=3 ;;
        --rounds) rounds=$2; shift ;;
        --only) only=$2; shift ;;
        --out) out=$2; shift ;;
        --threads) threads=$2; shift ;;
        --cpu-cap) cap=$2; shift ;;
        --check) check=1 ;;
        --perf) perfdir=$2; shift ;;
        --ringlb) ringlb=$2; shift ;;
        --bench) bench=$2; shift ;;
        --ab) ab_tune=$2; shift ;;
        *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" -eq 1 ]; then secs=1; redis_n=20000; idle_n=1000; else secs=5; redis_n=100000; idle_n=5000; fi

for tool in haproxy iperf3 redis-server redis-benchmark python3 taskset nginx wrk openssl; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing (apt-get install haproxy iperf3 redis-server redis-tools nginx wrk openssl)" >&2; exit 2; }
done
if [ -n "$perfdir" ]; then
    command -v perf >/dev/null || { echo "compare.sh: --perf needs perf (apt-get install linux-perf)" >&2; exit 2; }
    mkdir -p "$perfdir"
fi
if [ ! -x "$ringlb" ] || [ ! -x "$bench" ]; then cargo build --release -q -p ringlb -p ringlb-bench; fi
ulimit -n "$(ulimit -Hn)"

ncpu=$(nproc)
proxy_cpu=0
load_cpus=$([ "$ncpu" -gt 1 ] && echo "1-$((ncpu - 1))" || echo 0)
work=$(mktemp -d /tmp/ringlb-compare.XXXXXX)
pids=() cgroups=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for d in "${cgroups[@]}"; do rmdir "$d" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "compare.sh: nothing listening on $1" >&2; return 1; }

# Targets.
t_echo=$(port); t_sink=$(port); t_iperf=$(port); t_redis=$(port); t_web=$(port)
taskset -c "$load_cpus" "$bench" serve --listen "127.0.0.1:$t_echo" --mode echo 2>/dev/null & pids+=($!)
taskset -c "$load_cpus" "$bench" serve --listen "127.0.0.1:$t_sink" --mode sink 2>/dev/null & pids+=($!)
taskset -c "$load_cpus" iperf3 -s -p "$t_iperf" >/dev/null 2>&1 & pids+=($!)
taskset -c "$load_cpus" redis-server --port "$t_redis" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & pids+=($!)
# nginx for the HTTP workloads: a small page and a 1 MiB one, one worker, keep-alive.
mkdir -p "$work/www"
head -c 128 /dev/zero | tr '\0' 'x' > "$work/www/small"
head -c 1048576 /dev/zero | tr '\0' 'y' > "$work/www/1m"
cat > "$work/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
    server { listen 127.0.0.1:$t_web; root $work/www;
             location = /upload { client_max_body_size 2m; return 200 "ok\n"; } }
}
EOF
# The upload workloads' request: a 1 MiB POST (nginx reads and drops the body).
cat > "$work/upload.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("u", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
taskset -c "$load_cpus" nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' 2>/dev/null & pids+=($!)
for p in $t_echo $t_sink $t_iperf $t_redis $t_web; do wait_port "$p"; done

# Proxy ports: one listener per target for each proxy.
declare -A R H
for t in echo sink iperf redis web webrules tlsweb tlsrsa; do R[$t]=$(port); H[$t]=$(port); done
# The TLS fronts' certificate: ECDSA P-256, self-signed, key in the same PEM
# (as both proxies read it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -days 2 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
cat "$work/tls.crt" "$work/tls.key" > "$work/tls.pem"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -days 2 -keyout "$work/rsa.key" -out "$work/rsa.crt" 2>/dev/null
cat "$work/rsa.crt" "$work/rsa.key" > "$work/rsa.pem"
# The handshake load: ringlb-bench's rustls client if it has the mode, else s_time.
hs_usage=$("$bench" handshake 2>&1 || true)
if [[ $hs_usage == *"missing --addr"* ]]; then hs_tool=bench; else hs_tool=s_time; fi
# The same ringlb with --ab's tune key, for the workloads in stats_ab.
stats_ab="bench-rr bench-connrate http-keepalive redis-get redis-set"
n_echo=$(port); n_web=$(port); n_redis=$(port)

# The rules workload's frontend: 20 ACLs (none matches the benchmark's
# request, so every one is evaluated), 5 use_backend, 4 header rules, and
# cookie insert on the default backend (every response gets a Set-Cookie).
acl_expr() {
    local i=$1
    if [ "$i" -le 10 ]; then echo "path_beg /api/v$i/"
    elif [ "$i" -le 15 ]; then echo "hdr(host) -i h$i.example"
    elif [ "$i" -le 18 ]; then echo "path_end .x$i"
    elif [ "$i" -eq 19 ]; then echo "method PUT"
    else echo "src 10.20.0.0/16"; fi
}
rules_headers=("set-header X-Proxy bench" "add-header X-Client %[src]" "del-header X-Drop" "set-header X-Path %[path]")

cat > "$work/ringlb.toml" <<EOF
[global]
maxconn = 7000
tune = { pipesize = 1048576 }
[defaults]
mode = "tcp"
timeout = { connect = "5s", client = "60s", server = "60s" }
$(for t in echo sink iperf redis; do
    tp=t_$t
    printf '[[listen]]\nname = "%s"\nbind = ["127.0.0.1:%s"]\nservers = [{ name = "s", address = "127.0.0.1:%s" }]\n' "$t" "${R[$t]}" "${!tp}"
done)
[[listen]]
name = "web"
mode = "http"
bind = ["127.0.0.1:${R[web]}"]
servers = [{ name = "s", address = "127.0.0.1:$t_web" }]
[[listen]]
name = "tlsweb"
mode = "http"
bind = [{ address = "127.0.0.1:${R[tlsweb]}", ssl = { crt = "$work/tls.pem" } }]
servers = [{ name = "s", address = "127.0.0.1:$t_web" }]
[[listen]]
name = "tlsrsa"
mode = "http"
bind = [{ address = "127.0.0.1:${R[tlsrsa]}", ssl = { crt = "$work/rsa.pem" } }]
servers = [{ name = "s", address = "127.0.0.1:$t_web" }]
[[frontend]]
name = "webrules"
mode = "http"
bind = ["127.0.0.1:${R[webrules]}"]
acl = { $(for i in $(seq 1 20); do printf 'a%s = "%s", ' "$i" "$(acl_expr "$i")"; done | sed 's/, $//') }
use-backend = [$(for b in 1 2 3 4 5; do printf '{ backend = "r%s", if = "a%s || a%s a%s" }, ' "$b" "$b" "$((b + 10))" "$((b + 15))"; done | sed 's/, $//')]
default-backend = "r0"
http-request = [$(for h in "${rules_headers[@]}"; do printf '"%s", ' "$h"; done | sed 's/, $//')]
$(for b in 0 1 2 3 4 5; do
    printf '[[backend]]\nname = "r%s"\nmode = "http"\ncookie = { name = "SRV", mode = "insert", indirect = true, nocache = true }\nservers = [{ name = "s", address = "127.0.0.1:%s", cookie = "s1" }]\n' "$b" "$t_web"
done)
EOF
cat > "$work/ringlb-b.toml" <<EOF
[global]
maxconn = 7000
tune = { pipesize = 1048576, $ab_tune }
[defaults]
mode = "tcp"
timeout = { connect = "5s", client = "60s", server = "60s" }
[[listen]]
name = "redis"
bind = ["127.0.0.1:$n_redis"]
servers = [{ name = "s", address = "127.0.0.1:$t_redis" }]
[[listen]]
name = "echo"
bind = ["127.0.0.1:$n_echo"]
servers = [{ name = "s", address = "127.0.0.1:$t_echo" }]
[[listen]]
name = "web"
mode = "http"
bind = ["127.0.0.1:$n_web"]
servers = [{ name = "s", address = "127.0.0.1:$t_web" }]
EOF
cat > "$work/haproxy.cfg" <<EOF
global
    maxconn 7000
    nbthread $threads
    tune.pipesize 1048576
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
$(for t in echo sink iperf redis; do
    tp=t_$t
    printf 'listen %s\n    bind 127.0.0.1:%s\n    server s 127.0.0.1:%s\n' "$t" "${H[$t]}" "${!tp}"
    case $t in sink|iperf) printf '    option splice-request\n    option splice-response\n' ;; esac
done)
listen web
    mode http
    bind 127.0.0.1:${H[web]}
    option splice-auto
    server s 127.0.0.1:$t_web
listen tlsweb
    mode http
    bind 127.0.0.1:${H[tlsweb]} ssl crt $work/tls.pem
    server s 127.0.0.1:$t_web
listen tlsrsa
    mode http
    bind 127.0.0.1:${H[tlsrsa]} ssl crt $work/rsa.pem
    server s 127.0.0.1:$t_web
frontend webrules
    mode http
    bind 127.0.0.1:${H[webrules]}
    option splice-auto
$(for i in $(seq 1 20); do printf '    acl a%s %s\n' "$i" "$(acl_expr "$i")"; done)
$(for b in 1 2 3 4 5; do printf '    use_backend r%s if a%s || a%s a%s\n' "$b" "$b" "$((b + 10))" "$((b + 15))"; done)
    default_backend r0
$(for h in "${rules_headers[@]}"; do printf '    http-request %s\n' "$h"; done)
$(for b in 0 1 2 3 4 5; do
    printf 'backend r%s\n    mode http\n    option splice-auto\n    cookie SRV insert indirect nocache\n    server s 127.0.0.1:%s cookie s1\n' "$b" "$t_web"
done)
EOF

taskset -c "$proxy_cpu" "$ringlb" run -f "$work/ringlb.toml" --shards "$threads" 2>"$work/ringlb.log" & rl_pid=$!; pids+=("$rl_pid")
taskset -c "$proxy_cpu" haproxy -f "$work/haproxy.cfg" -db 2>"$work/haproxy.log" & hp_pid=$!; pids+=("$hp_pid")
taskset -c "$proxy_cpu" "$ringlb" run -f "$work/ringlb-b.toml" --shards "$threads" 2>"$work/ringlb-b.log" & rn_pid=$!; pids+=("$rn_pid")
ringlb_ok=1 b_ok=1
for p in "${R[@]}"; do wait_port "$p" || ringlb_ok=0; done
for p in $n_echo $n_web $n_redis; do wait_port "$p" || b_ok=0; done
for p in "${H[@]}"; do wait_port "$p"; done
[ "$ringlb_ok" -eq 1 ] || echo "compare.sh: ringlb failed to start; reporting HAProxy only: $(cat "$work/ringlb.log")" >&2

# cap_cpu PID NAME: moves PID (all its threads) into a cgroup of its own limited to
# $cap % of one CPU per thread (cgroup v1 cpu controller, or v2 cpu.max).
cap_cpu() {
    local pid=$1 name=$2 period=10000 quota dir
    quota=$((cap * period * threads / 100))
    if [ -w /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        dir=/sys/fs/cgroup/cpu/ringlb-compare-$$-$name
        mkdir "$dir" && cgroups+=("$dir")
        echo "$period" > "$dir/cpu.cfs_period_us"
        echo "$quota" > "$dir/cpu.cfs_quota_us"
    elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        echo +cpu > /sys/fs/cgroup/cgroup.subtree_control
        dir=/sys/fs/cgroup/ringlb-compare-$$-$name
        mkdir "$dir" && cgroups+=("$dir")
        echo "$quota $period" > "$dir/cpu.max"
    else
        echo "compare.sh: --cpu-cap needs a writable cgroup cpu controller (run as root)" >&2
        exit 2
    fi
    echo "$pid" > "$dir/cgroup.procs"
}
if [ -n "$cap" ]; then
    if [ "$ringlb_ok" -eq 1 ]; then cap_cpu "$rl_pid" ringlb; fi
    if [ "$b_ok" -eq 1 ]; then cap_cpu "$rn_pid" ringlb-b; fi
    cap_cpu "$hp_pid" haproxy
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
# Syscall counting needs perf and its raw_syscalls tracepoint.
count_syscalls=0
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null; then
    count_syscalls=1
    # Cost of a null syscall's entry and exit here, µs.
    null_syscall_us=$(perf bench syscall basic 2>/dev/null | awk '/usecs\/op/ {print $1}')
fi
null_syscall_us=${null_syscall_us:-}
small_message() { case "$1" in redis-*|bench-rr|http-keepalive|http-rules) return 0 ;; *) return 1 ;; esac; }
results="$work/results.tsv"
: > "$results"
# record WORKLOAD PROXY VALUE [BYTES CPU_S] [P99_MS] [SYSCALLS USER_S]
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" "${5:-}" "${6:-}" "${7:-}" "${8:-}" >> "$results"; }

want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
if want tls-handshake || want tls-handshake-rsa || want tls-resume; then
    echo "compare.sh: TLS handshakes measured with $([ "$hs_tool" = bench ] && echo "ringlb-bench handshake (rustls)" || echo "openssl s_time (ringlb-bench has no handshake mode)")" >&2
fi
load() { taskset -c "$load_cpus" "$@"; }

# One measurement of WORKLOAD through PORT; prints "value units p99" where units
# is bytes moved (streams) or requests served, and "-" marks a missing figure.
measure() {
    local w=$1 p=$2 json
    case "$w" in
        iperf3-1|iperf3-8)
            local par=1; [ "$w" = iperf3-8 ] && par=8
            json=$(load iperf3 -c 127.0.0.1 -p "$p" -t "$secs" -P "$par" -J)
            python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum_received"]; print(d["bits_per_second"]/1e9, d["bytes"], "-")' <<<"$json" ;;
        bench-throughput)
            json=$(load "$bench" throughput --addr "127.0.0.1:$p" --streams 4 --duration "${secs}s" --json)
            python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["gbit_up"], d["bytes_up"], "-")' <<<"$json" ;;
        redis-get|redis-set|redis-get-P16|redis-set-P16)
            local t=${w#redis-}; t=${t%-P16}; local pl=1; [[ "$w" == *P16 ]] && pl=16
            load redis-benchmark -p "$p" -t "$t" -n "$redis_n" -c 50 -P "$pl" --csv 2>/dev/null |
                python3 -c 'import csv,sys; r=list(csv.reader(sys.stdin)); d=dict(zip(r[0],r[1])); print(d["rps"], sys.argv[1], d.get("p99_latency_ms","-"))' "$redis_n" ;;
        bench-rr)
            json=$(load "$bench" rr --addr "127.0.0.1:$p" --conns 50 --size 64 --duration "${secs}s" --json)
            python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["requests_per_s"], d["requests"], d["latency"]["p99_us"]/1000)' <<<"$json" ;;
        http-keepalive|http-rules|http-close|http-1m)
            local path=/small conns=50 hdr=()
            [ "$w" = http-1m ] && { path=/1m; conns=8; }
            [ "$w" = http-close ] && hdr=(-H "Connection: close")
            load wrk -t 1 -c "$conns" -d "${secs}s" --latency "${hdr[@]}" "http://127.0.0.1:$p$path" |
                python3 -c '
import re,sys
t=sys.stdin.read()
rps=re.search(r"Requests/sec:\s+([\d.]+)",t); n=re.search(r"(\d+) requests in",t)
bad=re.search(r"Non-2xx or 3xx responses:\s+(\d+)",t)
if bad:
    # Errors answered fast are not requests served: no figure.
    sys.stderr.write("wrk saw %s error responses; no figure\n" % bad.group(1)); rps=n=None
m=re.search(r"\n\s+99%\s+([\d.]+)(us|ms|s)",t)
p99="-"
if m:
    v=float(m.group(1)); p99=v/1000 if m.group(2)=="us" else (v*1000 if m.group(2)=="s" else v)
print(rps.group(1) if rps else "-", n.group(1) if n else "-", p99)' ;;
        tls-handshake|tls-handshake-rsa|tls-resume)
            if [ "$hs_tool" = bench ]; then
                local resume=()
                [ "$w" = tls-resume ] && resume=(--resume)
                json=$(load "$bench" handshake --addr "127.0.0.1:$p" --connections 16 --duration "${secs}s" "${resume[@]}" --json)
                python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["handshakes_per_s"], d["handshakes"], d["latency"]["p99_us"]/1000)' <<<"$json"
                return
            fi
            local how=(-new) t0 t1 txt
            [ "$w" = tls-resume ] && how=(-reuse -tls1_2)
            t0=$(date +%s.%N)
            txt=$(load openssl s_time -connect "127.0.0.1:$p" -time "$secs" "${how[@]}" 2>/dev/null || true)
            t1=$(date +%s.%N)
            python3 -c '
import re,sys
n=re.findall(r"(\d+) connections in [\d.]+s;",sys.stdin.read())
print(int(n[-1])/(float(sys.argv[2])-float(sys.argv[1])) if n else "-", n[-1] if n else "-", "-")' "$t0" "$t1" <<<"$txt" ;;
        https-keepalive|https-1m|https-upload|http-upload)
            local path=/small conns=50 scheme=https lua=()
            [ "$w" = https-1m ] && { path=/1m; conns=8; }
            [[ "$w" == *-upload ]] && { path=/upload; conns=8; lua=(-s "$work/upload.lua"); }
            [ "$w" = http-upload ] && scheme=http
            load wrk -t 1 -c "$conns" -d "${secs}s" "${lua[@]}" "$scheme://127.0.0.1:$p$path" |
                python3 -c '
import re,sys
t=sys.stdin.read()
rps=re.search(r"Requests/sec:\s+([\d.]+)",t); n=re.search(r"(\d+) requests in",t)
bad=re.search(r"Non-2xx or 3xx responses:\s+(\d+)",t)
if bad:
    sys.stderr.write("wrk saw %s error responses; no figure\n" % bad.group(1)); rps=n=None
print(rps.group(1) if rps else "-", n.group(1) if n else "-", "-")' ;;
        bench-connrate)
            json=$(load "$bench" connrate --addr "127.0.0.1:$p" --conns 16 --duration "${secs}s" --json)
            python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["connections_per_s"], d["connections"], d["latency"]["p99_us"]/1000)' <<<"$json" ;;
    esac
}

target_port() {
    case "$1" in
        iperf3-*) echo "$2" | cut -d' ' -f1 ;;
        bench-throughput) echo "$2" | cut -d' ' -f2 ;;
        redis-*) echo "$2" | cut -d' ' -f3 ;;
        http-rules) echo "$2" | cut -d' ' -f6 ;;
        http-upload) echo "$2" | cut -d' ' -f5 ;;
        tls-handshake-rsa) echo "$2" | cut -d' ' -f8 ;;
        tls-*|https-*) echo "$2" | cut -d' ' -f7 ;;
        http-*) echo "$2" | cut -d' ' -f5 ;;
        *) echo "$2" | cut -d' ' -f4 ;;
    esac
}

workloads="iperf3-1 iperf3-8 bench-throughput redis-get redis-set redis-get-P16 redis-set-P16 bench-rr bench-connrate http-keepalive http-rules http-close http-1m tls-handshake tls-handshake-rsa tls-resume https-keepalive https-1m http-upload https-upload"
start=$(date +%s)
for w in $workloads; do
    want "$w" || continue
    rp=$(target_port "$w" "${R[iperf]} ${R[sink]} ${R[redis]} ${R[echo]} ${R[web]} ${R[webrules]} ${R[tlsweb]} ${R[tlsrsa]}")
    hp=$(target_port "$w" "${H[iperf]} ${H[sink]} ${H[redis]} ${H[echo]} ${H[web]} ${H[webrules]} ${H[tlsweb]} ${H[tlsrsa]}")
    dp=$(target_port "$w" "$t_iperf $t_sink $t_redis $t_echo $t_web $t_web - -")
    # No direct figure for TLS: the target speaks plain HTTP.
    if [ "$dp" != - ]; then
        read -r v b p99 <<<"$(measure "$w" "$dp")"; record "$w" direct "$v" "$b" "" "$p99"
    fi
    if [ -n "$perfdir" ]; then
        for side in ringlb haproxy; do
            if [ "$side" = ringlb ]; then [ "$ringlb_ok" -eq 1 ] || continue; pid=$rl_pid; p=$rp; else pid=$hp_pid; p=$hp; fi
            perf record -F 2999 -g -p "$pid" -o "$perfdir/$w-$side.data" >/dev/null 2>&1 & perf_pid=$!
            measure "$w" "$p" >/dev/null || true
            kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true
        done
    fi
    sides="ringlb haproxy"
    if [[ " $stats_ab " == *" $w "* ]] && [ "$b_ok" -eq 1 ]; then sides="ringlb ringlb-b haproxy"; fi
    for r in $(seq 1 "$rounds"); do
        for side in $sides; do
            case $side in
                ringlb) [ "$ringlb_ok" -eq 1 ] || continue; pid=$rl_pid; p=$rp ;;
                ringlb-b) pid=$rn_pid; p=$n_echo; [[ $w == http-* ]] && p=$n_web; [[ $w == redis-* ]] && p=$n_redis ;;
                *) pid=$hp_pid; p=$hp ;;
            esac
            c0=$(cpu_ticks "$pid"); u0=$(user_ticks "$pid")
            sc_pid=""
            if [ "$count_syscalls" -eq 1 ] && small_message "$w"; then
                perf stat -e raw_syscalls:sys_enter -x, -p "$pid" -o "$work/syscalls.txt" >/dev/null 2>&1 & sc_pid=$!
            fi
            read -r v b p99 <<<"$(measure "$w" "$p")"
            c1=$(cpu_ticks "$pid"); u1=$(user_ticks "$pid")
            sc=""
            if [ -n "$sc_pid" ]; then
                kill -INT "$sc_pid" 2>/dev/null || true; wait "$sc_pid" 2>/dev/null || true
                sc=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$work/syscalls.txt")
            fi
            hz=$(getconf CLK_TCK)
            record "$w" "$side" "$v" "$b" "$(python3 -c "print(($c1-$c0)/$hz)")" "$p99" "$sc" "$(python3 -c "print(($u1-$u0)/$hz)")"
        done
        [ -t 2 ] && printf '\r%s round %s/%s' "$w" "$r" "$rounds" >&2
    done
    if [ -t 2 ]; then printf '\r\033[2K' >&2; fi
done

if want idle; then
    for side in ringlb haproxy; do
        if [ "$side" = ringlb ]; then [ "$ringlb_ok" -eq 1 ] || continue; pid=$rl_pid; p=${R[echo]}; else pid=$hp_pid; p=${H[echo]}; fi
        json=$(load "$bench" idle --addr "127.0.0.1:$p" --pid "$pid" --conns "$idle_n" --hold 2s --json)
        record idle "$side" "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_per_conn"])' <<<"$json")"
        record idle-wakeups "$side" "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["hold_wakeups_per_s"])' <<<"$json")"
    done
fi
elapsed=$(( $(date +%s) - start ))

python3 - "$results" "$rounds" "$elapsed" "$threads" "$secs" "$cap" "$check" "$perfdir" "$null_syscall_us" "$ab_tune" <<'PY' | tee "${out:-/dev/null}"
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rounds, elapsed, threads, secs, cap, check = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7] == "1"
perfdir = sys.argv[8]
null_us = float(sys.argv[9]) if sys.argv[9] else None
ab_tune = sys.argv[10]
units = {"iperf3-1": "Gbit/s", "iperf3-8": "Gbit/s", "bench-throughput": "Gbit/s", "bench-rr": "req/s", "bench-connrate": "conn/s", "idle": "bytes/conn", "idle-wakeups": "wakeups/s", "tls-handshake": "handshakes/s", "tls-handshake-rsa": "handshakes/s", "tls-resume": "handshakes/s", "https-1m": "req/s (1 MiB)", "http-upload": "req/s (1 MiB up)", "https-upload": "req/s (1 MiB up)"}
def vals(w, side, col=2):
    return [float(r[col]) for r in rows if r[0] == w and r[1] == side and r[col] not in ("", "-")]
def fmt(x):
    return f"{x:,.2f}" if x < 1000 else f"{x:,.0f}"
capped = f", each capped at {cap} % of one CPU per shard/thread" if cap else ""
print(f"ringlb vs HAProxy 2.6, {threads} shard/thread each{capped}, {rounds} interleaved rounds, {secs}s per run, total {elapsed}s\n")
print("| workload | unit | ringlb median (min–max) | HAProxy median (min–max) | ringlb/HAProxy | direct |")
print("|---|---|---|---|---|---|")
seen = []
for r in rows:
    if r[0] not in seen:
        seen.append(r[0])
for w in seen:
    unit = units.get(w, "req/s")
    a, b, d = vals(w, "ringlb"), vals(w, "haproxy"), vals(w, "direct")
    cell = lambda v: f"{fmt(st.median(v))} ({fmt(min(v))}–{fmt(max(v))})" if v else "failed"
    ratio = f"{st.median(a)/st.median(b):.2f}" if a and b and st.median(b) else "–"
    if w.startswith("idle"):
        ratio = f"{st.median(a)/st.median(b):.2f} (lower is better)" if a and b and st.median(b) else "–"
    print(f"| {w} | {unit} | {cell(a)} | {cell(b)} | {ratio} | {fmt(st.median(d)) if d else '–'} |")
lat = [w for w in seen if vals(w, "haproxy", 5)]
if lat:
    if cap:
        print("\nUnder a CPU cap the p99 mostly measures the cgroup throttle (a request that arrives")
        print("while a proxy is throttled waits for its next slot); read latencies from an uncapped run.")
    print("\n| workload | ringlb p99 ms (median) | HAProxy p99 ms (median) |")
    print("|---|---|---|")
    for w in lat:
        a, b = vals(w, "ringlb", 5), vals(w, "haproxy", 5)
        print(f"| {w} | {st.median(a):.3f} | {st.median(b):.3f} |" if a and b else f"| {w} | – | – |")
streams = {"iperf3-1", "iperf3-8", "bench-throughput"}
def cpu_per_unit(w, side):
    """CPU seconds per GB (streams) or µs per request/handshake, all counted rounds summed."""
    rs = [r for r in rows if r[0] == w and r[1] == side and r[3] not in ("", "-") and r[4] not in ("", "-")]
    u = sum(float(r[3]) for r in rs); c = sum(float(r[4]) for r in rs)
    if not u:
        return None
    return c / (u / 1e9) if w in streams else c / u * 1e6
cpu = [w for w in seen if vals(w, "haproxy", 3) and vals(w, "haproxy", 4)]
if cpu:
    print("\nProxy CPU (user+system, from /proc/PID/stat) per unit of work, all rounds summed:\n")
    print("| workload | unit | ringlb | HAProxy | ringlb/HAProxy |")
    print("|---|---|---|---|---|")
    for w in cpu:
        unit = "CPU s per GB" if w in streams else ("CPU µs per handshake" if units.get(w) == "handshakes/s" else "CPU µs per request")
        a, b = cpu_per_unit(w, "ringlb"), cpu_per_unit(w, "haproxy")
        print(f"| {w} | {unit} | {a:.3f} | {b:.3f} | {a/b:.2f} |" if a and b else f"| {w} | {unit} | – | – | – |")
split = [w for w in seen if any(r[0] == w and len(r) > 7 and r[6] not in ("", "-") for r in rows)]
if split and null_us:
    print(f"\nCost per request, all rounds summed (syscalls: perf's raw_syscalls:sys_enter; CPU: /proc/PID/stat).")
    print(f"Proxy-controlled = user-space time + syscalls × {null_us:.3f} µs (a null syscall's entry and exit here,")
    print("`perf bench syscall basic`); the rest of the system time is the kernel's TCP and loopback work and the")
    print("event interface's own kernel work, which this split leaves on the kernel's side.\n")
    print("| workload | proxy | syscalls/req | user µs/req | system µs/req | proxy-controlled µs/req |")
    print("|---|---|---|---|---|---|")
    ratios = {}
    for w in split:
        got = {}
        for side in ("ringlb", "haproxy"):
            rs = [r for r in rows if r[0] == w and r[1] == side and len(r) > 7 and r[6] not in ("", "-") and r[3] not in ("", "-")]
            n = sum(float(r[3]) for r in rs)
            if not n:
                continue
            sc = sum(float(r[6]) for r in rs) / n
            user = sum(float(r[7]) for r in rs) / n * 1e6
            cpu = sum(float(r[4]) for r in rs) / n * 1e6
            ctrl = user + sc * null_us
            got[side] = (sc, ctrl)
            print(f"| {w} | {side} | {sc:.3f} | {user:.3f} | {cpu - user:.3f} | {ctrl:.3f} |")
        if len(got) == 2 and got["haproxy"][0] and got["haproxy"][1]:
            ratios[w] = (got["ringlb"][0] / got["haproxy"][0], got["ringlb"][1] / got["haproxy"][1])
    if ratios:
        print("\n| workload | syscalls/req ringlb/HAProxy | proxy-controlled CPU/req ringlb/HAProxy |")
        print("|---|---|---|")
        for w, (a, b) in ratios.items():
            print(f"| {w} | {a:.2f} | {b:.2f} |")
if perfdir:
    import os, subprocess
    entries = [("TCP send (with loopback delivery)", "__x64_sys_sendto"), ("TCP receive", "__x64_sys_recvfrom"),
               ("splice", "__x64_sys_splice"), ("connect", "__x64_sys_connect"), ("socket", "__x64_sys_socket"),
               ("accept", "__x64_sys_accept4"), ("close", "__x64_sys_close"), ("deferred close (task work)", "task_work_run"),
               ("io_uring_enter", "__do_sys_io_uring_enter"), ("epoll", "do_epoll_wait"), ("setsockopt", "__x64_sys_setsockopt")]
    def shares(path):
        dso = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
                             capture_output=True, text=True).stdout
        kernel = sum(float(l.split("%")[0]) for l in dso.splitlines() if "%" in l and "[kernel" in l and not l.startswith("#"))
        sym = subprocess.run(["perf", "report", "-i", path, "--children", "--sort", "sym", "--stdio", "-g", "none"],
                             capture_output=True, text=True).stdout
        under = {}
        for l in sym.splitlines():
            f = l.split()
            if len(f) >= 4 and f[0].endswith("%") and f[2] == "[k]":
                under.setdefault(f[3], float(f[0][:-1]))
        return kernel, under
    print(f"\nWhere each proxy's CPU went (perf record -g, {perfdir}); % of the proxy's samples:\n")
    print("| workload | proxy | kernel | user space | " + " | ".join(e[0] for e in entries) + " |")
    print("|---|---|---|---|" + "---|" * len(entries))
    for w in seen:
        for side in ("ringlb", "haproxy"):
            path = os.path.join(perfdir, f"{w}-{side}.data")
            if not os.path.exists(path):
                continue
            kernel, under = shares(path)
            cells = " | ".join(f"{under[e[1]]:.1f}" if e[1] in under else "–" for e in entries)
            print(f"| {w} | {side} | {kernel:.1f} | {100 - kernel:.1f} | {cells} |")
    # The issue's definition of what a proxy controls: its user space, its
    # event interface (epoll, or io_uring's submission, task-work and
    # completion machinery, which stands in for both epoll and the syscalls),
    # and system-call entry/exit with the fd lookup. Each sample is charged to
    # the function it was taken in (self time); everything else in the kernel
    # (TCP, loopback delivery, sockets, skb memory, timers, the scheduler) is
    # the network work any proxy pays for the same bytes.
    import re
    classes = [("syscall", re.compile(r"^(entry_SYSCALL|do_syscall_64|syscall_exit|syscall_return|x64_sys_call|__x64_sys_|exit_to_user_mode|arch_exit_to_user|__fget|fdget|__fdget|fput$)")),
               ("event", re.compile(r"^(__)?io_|^__do_sys_io_uring|^io_uring|^llist_reverse_order$|^tctx_task_work|^(__)?ep_|^do_epoll|epoll"))]
    def split_samples(path):
        out = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso,sym", "--stdio", "-g", "none"],
                             capture_output=True, text=True).stdout
        got = {"user": 0.0, "syscall": 0.0, "event": 0.0, "network": 0.0}
        for l in out.splitlines():
            f = l.split()
            if len(f) < 4 or not f[0].endswith("%") or l.startswith("#"):
                continue
            pct = float(f[0][:-1])
            if f[2] != "[k]":
                got["user"] += pct
                continue
            name = f[3]
            got[next((c for c, rx in classes if rx.search(name)), "network")] += pct
        return got
    rowsplit = []
    for w in seen:
        for side in ("ringlb", "haproxy"):
            path = os.path.join(perfdir, f"{w}-{side}.data")
            per = cpu_per_unit(w, side)
            if os.path.exists(path) and per and w not in streams:
                rowsplit.append((w, side, per, split_samples(path)))
    if rowsplit:
        print("\nProxy-controlled CPU per request from perf (the issue's definition): the perf run's share of")
        print("samples in user space, in the event interface (epoll, or io_uring's own functions: submission,")
        print("task work, polling, completions, buffer selection) and in system-call entry/exit and fd lookup,")
        print("each times the proxy's CPU per request in the counted rounds; the rest is the kernel's network work.\n")
        print("| workload | proxy | user µs | event interface µs | syscall entry/exit µs | kernel network µs | proxy-controlled µs |")
        print("|---|---|---|---|---|---|---|")
        ctrl = {}
        for w, side, per, g in rowsplit:
            tot = sum(g.values()) or 100.0
            us = {k: v / tot * per for k, v in g.items()}
            ctrl[(w, side)] = us["user"] + us["event"] + us["syscall"]
            print(f"| {w} | {side} | {us['user']:.3f} | {us['event']:.3f} | {us['syscall']:.3f} | {us['network']:.3f} | {ctrl[(w, side)]:.3f} |")
        both = [w for w in seen if (w, "ringlb") in ctrl and (w, "haproxy") in ctrl]
        if both:
            print("\n| workload | proxy-controlled CPU/req from perf, ringlb/HAProxy |")
            print("|---|---|")
            for w in both:
                print(f"| {w} | {ctrl[(w, 'ringlb')] / ctrl[(w, 'haproxy')]:.2f} |")
ab = [w for w in seen if w in ("bench-rr", "bench-connrate", "http-keepalive", "redis-get", "redis-set")]
if ab:
    if ab_tune == "stats-counters = false":
        print("\nWhat counting costs: the same ringlb with traffic counters, rates and latency histograms")
        print("(the default) and with `tune.stats-counters = false`, interleaved in the same rounds:\n")
        print("| workload | stats on median (min–max) | stats off median (min–max) | on/off | difference |")
    else:
        print(f"\nA/B: the same ringlb with the default tune (A) and with `tune {{ {ab_tune} }}` (B), interleaved in")
        print("the same rounds (under --cpu-cap each has the same budget):\n")
        print("| workload | A median (min–max) | B median (min–max) | A/B | difference |")
    print("|---|---|---|---|---|")
    for w in ab:
        a, b = vals(w, "ringlb"), vals(w, "ringlb-b")
        cell = lambda v: f"{fmt(st.median(v))} ({fmt(min(v))}–{fmt(max(v))})" if v else "failed"
        if a and b:
            r = st.median(a) / st.median(b)
            print(f"| {w} | {cell(a)} | {cell(b)} | {r:.3f} | {(r - 1) * 100:+.1f} % |")
        else:
            print(f"| {w} | {cell(a)} | {cell(b)} | – | – |")
missing = [w for w in seen if not vals(w, "ringlb") or not vals(w, "haproxy")]
missing += [f"{w} ({ab_tune})" for w in ab if not vals(w, "ringlb-b")]
if check and missing:
    print(f"\ncompare.sh --check: no figure for one proxy or both in: {', '.join(missing)}", file=sys.stderr)
    sys.exit(1)
PY
