#!/usr/bin/env bash
# Runs ringlb's whole test suite on a fresh Debian machine: installs the real
# servers the tests talk to (Debian packages), checks formatting and lints, then
# runs every test. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(haproxy redis-server redis-tools nginx iperf3 postgresql mariadb-server curl openssl iproute2 procps shellcheck linux-perf util-linux socat prometheus chromium wrk keepalived psmisc)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Tests open thousands of sockets; use the whole hard limit.
ulimit -n "$(ulimit -Hn)"

cargo fmt --all --check
shellcheck scripts/*.sh .ci/run kernel-tuning/apply.sh bench/compare.sh
cargo clippy --workspace --all-targets -- -D warnings
# The side-by-side comparison with HAProxy, quick, so the script itself cannot
# rot: --check fails if a workload has no figure for either proxy. The figures are
# printed, not judged (timings on a shared machine are not test results).
cargo build --release -q -p ringlb -p ringlb-bench
bench/compare.sh --quick --check

cargo test --workspace
