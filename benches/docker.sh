#!/usr/bin/env bash
# Benchmark of the docker collector (issue 4): scrape latency with N running
# containers on a private Docker engine (same setup as tests/support/src/docker.rs:
# own data-root, exec-root and socket, no network changes), release build, compared in the
# same run with the docker CLI doing the same job.
#
# Usage: benches/docker.sh            (root; needs docker.io, busybox-static, curl, hyperfine)
#   N=50 SCRAPES=200 CONCURRENCY="16 4 1" STATS_SCRAPES=20 benches/docker.sh
# Runs: memory_source=cgroup (the default) at each CONCURRENCY, then
# memory_source=stats (the engine's one-shot stats, the in-process peer) at 16.
# Prints a Markdown block for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
SCRAPES=${SCRAPES:-200}
CONCURRENCY=${CONCURRENCY:-"16 4 1"}
STATS_SCRAPES=${STATS_SCRAPES:-20}
IMAGE=hostmedic-test/busybox

ROOT=$(mktemp -d /tmp/hmdbXXXXXX)
CG=$(basename "$ROOT")
DPID=""; HPID=""
cleanup() {
  [ -n "$HPID" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null || true
  if [ -n "$DPID" ]; then
    ids=$(DOCKER_HOST=unix://$ROOT/docker.sock docker ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && DOCKER_HOST=unix://$ROOT/docker.sock docker rm -f $ids >/dev/null 2>&1 || true
    kill "$DPID" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  fi
  for d in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG"; do rmdir "$d"/* "$d" 2>/dev/null || true; done
  rm -rf "$ROOT"
}
trap cleanup EXIT

echo "building release binary..." >&2
cargo build --release --quiet
BIN=target/release/hostmedic

dockerd --data-root="$ROOT/data" --exec-root="$ROOT/exec" --pidfile="$ROOT/dockerd.pid" \
  --cgroup-parent="/$CG" -H "unix://$ROOT/docker.sock" \
  --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none \
  >"$ROOT/dockerd.log" 2>&1 &
DPID=$!
until curl -sf --unix-socket "$ROOT/docker.sock" http://localhost/_ping >/dev/null 2>&1; do sleep 0.1; done
export DOCKER_HOST=unix://$ROOT/docker.sock DOCKER_CONFIG=$ROOT/cli
bb=$ROOT/bbroot; mkdir -p "$bb/bin"; cp /bin/busybox "$bb/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$bb/bin/$a"; done
tar -C "$bb" -c . | docker import - $IMAGE >/dev/null

echo "starting $N containers..." >&2
for i in $(seq "$N"); do
  if [ $((i % 2)) -eq 0 ]; then
    docker run -d --name "c$i" --memory=64m --stop-timeout=1 --health-cmd=true --health-interval=30s $IMAGE sleep 36000 >/dev/null 2>&1
  else
    docker run -d --name "c$i" --memory=64m --stop-timeout=1 $IMAGE sleep 36000 >/dev/null 2>&1
  fi
done
running=$(docker ps -q | wc -l)

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.5); if(i<1)i=1; printf "%.1f", a[i]*1000}'; }

echo "## docker"
echo
echo "$(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start;"
echo "engine $(docker version -f '{{.Server.Version}} (API {{.Server.APIVersion}})'), $running running containers"
echo "(busybox sleep, --memory=64m, half with a health check), release build."
echo
echo "| what | p50 ms | p90 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|"
runs=""
for conc in $CONCURRENCY; do runs="$runs cgroup:$conc:$SCRAPES"; done
runs="$runs stats:16:$STATS_SCRAPES"
for run in $runs; do
  IFS=: read -r src conc scrapes <<<"$run"
  cat >"$ROOT/hostmedic.toml" <<EOF
[host]
enabled = false
[hwmon]
enabled = false
[docker]
host = "unix://$ROOT/docker.sock"
timeout = "3s"
concurrency = $conc
memory_source = "$src"
EOF
  "$BIN" --config "$ROOT/hostmedic.toml" --web.listen-address 127.0.0.1:0 serve 2>"$ROOT/hm.log" &
  HPID=$!
  addr=""
  for _ in $(seq 100); do
    addr=$(grep -o 'address=[0-9.:]*' "$ROOT/hm.log" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && break; sleep 0.1
  done
  url="http://$addr/metrics"
  body=$(curl -sf "$url")
  grep -q 'hostmedic_scrape_collector_success{collector="docker"} 1' <<<"$body" || { echo "docker collector failed: $body" >&2; exit 1; }
  series=$(grep -c '^hostmedic_docker_container_memory_usage_bytes' <<<"$body")
  [ "$series" -eq "$running" ] || { echo "expected $running memory series, got $series" >&2; exit 1; }
  for _ in $(seq 3); do curl -sf -o /dev/null "$url"; done
  : >"$ROOT/t"; : >"$ROOT/c"
  for _ in $(seq "$scrapes"); do
    curl -sf -o "$ROOT/body" -w '%{time_total}\n' "$url" >>"$ROOT/t"
    grep -o 'collector_duration_seconds{collector="docker"} [0-9.e-]*' "$ROOT/body" | cut -d' ' -f2 >>"$ROOT/c"
  done
  for f in t c; do
    what="hostmedic GET /metrics, memory_source=$src, concurrency $conc ($scrapes scrapes)"
    [ $f = c ] && what="… docker collector alone (its duration metric)"
    echo "| $what | $(pct 50 <"$ROOT/$f") | $(pct 90 <"$ROOT/$f") | $(pct 99 <"$ROOT/$f") | $(pct 100 <"$ROOT/$f") |"
  done
  kill "$HPID"; wait "$HPID" 2>/dev/null || true; HPID=""
done

# Peers in the same run: the docker CLI fetching the same facts.
hf() { hyperfine -N --style none --export-json "$ROOT/hf.json" "$@" >/dev/null 2>&1
       python3 -c "import json;r=json.load(open('$ROOT/hf.json'))['results'][0];print('%.1f'%(r['median']*1000))"; }
ids=$(docker ps -q | tr '\n' ' ')
inspect_ms=$(hf --warmup 2 --runs 20 "docker inspect $ids")
stats_ms=$(hf --warmup 1 --runs 5 "docker stats --no-stream")
echo
echo "Peers (hyperfine median, same engine, same moment):"
echo
echo "| peer | median ms |"
echo "|---|---|"
echo "| \`docker inspect\` of the $running containers (state only, no memory) | $inspect_ms |"
echo "| \`docker stats --no-stream\` (memory via the streaming stats sample) | $stats_ms |"
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
