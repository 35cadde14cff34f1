#!/usr/bin/env bash
# Benchmark: a full scrape of the systemd collector, hostmedic vs Debian's
# prometheus-node-exporter, against the same real systemd 252 (PID 1 in a
# private rootfs, tests/systemd-rootfs.sh) holding N_UNITS generated units.
#
#   sudo benches/systemd.sh            # N_UNITS=1000 RUNS=41 UNIT_KIND=oneshot
#   sudo BIN=/tmp/hostmedic-before benches/systemd.sh   # that binary, no build
#
# BIN=path measures the given hostmedic binary (e.g. another commit's release
# build, for before/after pairs against the same rootfs and script) instead
# of building this tree.
# Five exporters run side by side and are scraped in turn (hostmedic with
# its default change-signal cache and per-unit resources on (reading the
# machine's cgroup tree; per-unit pressure off, the default), the same with
# `systemd.resources = []`, the same with `systemd.resource_pressure = true`,
# hostmedic with `refresh_interval = "0s"`, i.e. every unit read every
# scrape, resources on, and node_exporter; repeat), so machine noise hits all
# alike; the first three differ only in resources, which gives the added
# cost per unit of resources and of per-unit pressure. Reported per exporter: median / p90 wall time of a full scrape
# (curl time_total on 127.0.0.1), the exporter's own CPU per scrape
# (utime+stime from /proc/<pid>/stat), and the CPU the scrape cost inside the
# systemd machine (systemd + dbus-daemon: usage_usec of its cgroup).
# Needs root (boots systemd in namespaces), a release build (done here),
# prometheus-node-exporter, curl, zstd, debootstrap (first run only).
set -euo pipefail
cd "$(dirname "$0")/.."
N_UNITS=${N_UNITS:-1000}
# oneshot: RemainAfterExit services (no process, systemd keeps no cgroup
# directory for most); running: `sleep infinity` services, each with a live
# cgroup, so every unit's cgroup files are really read.
UNIT_KIND=${UNIT_KIND:-oneshot}
RUNS=${RUNS:-41}
WARMUP=${WARMUP:-3}
NODE_EXPORTER=${NODE_EXPORTER:-prometheus-node-exporter}
SCRIPT=$PWD/tests/systemd-rootfs.sh
CACHE=${HOSTMEDIC_TEST_CACHE:-/var/cache/hostmedic-test}

[ "$(id -u)" -eq 0 ] || { echo "benches/systemd.sh: needs root" >&2; exit 2; }
command -v "$NODE_EXPORTER" >/dev/null || { echo "$NODE_EXPORTER not installed" >&2; exit 2; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -z "${BIN:-}" ]; then
  echo "== release build" >&2
  cargo build --release --quiet --bin hostmedic
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/hostmedic
fi
[ -x "$BIN" ] || { echo "benches/systemd.sh: $BIN is not an executable" >&2; exit 2; }

# The same cached rootfs tarball the tests use (name: FNV-1a of the script).
h=$((0xcbf29ce484222325))
for b in $(od -An -v -tu1 "$SCRIPT"); do h=$(( (h ^ b) * 0x100000001b3 )); done
TARBALL=$CACHE/$(printf 'systemd-rootfs-%016x.tar.zst' $h)
mkdir -p "$CACHE"
if [ ! -f "$TARBALL" ]; then
  echo "== building rootfs into $TARBALL" >&2
  exec 9>"$CACHE/systemd-rootfs.lock"; flock 9
  if [ ! -f "$TARBALL" ]; then
    W=$CACHE/build-$$; rm -rf "$W"; mkdir -p "$W"
    bash "$SCRIPT" build "$W/rootfs" > "$CACHE/build.log" 2>&1
    tar --zstd --numeric-owner -C "$W/rootfs" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$W"
  fi
  flock -u 9
fi

ROOT=$(mktemp -d /tmp/hostmedic-bench-systemd.XXXXXX)
HM_PID=; HMN_PID=; HMP_PID=; HM0_PID=; NE_PID=; BOOTED=
cleanup() {
  [ -n "$HM_PID" ] && kill "$HM_PID" 2>/dev/null || true
  [ -n "$HMN_PID" ] && kill "$HMN_PID" 2>/dev/null || true
  [ -n "$HMP_PID" ] && kill "$HMP_PID" 2>/dev/null || true
  [ -n "$HM0_PID" ] && kill "$HM0_PID" 2>/dev/null || true
  [ -n "$NE_PID" ] && kill "$NE_PID" 2>/dev/null || true
  [ -n "$BOOTED" ] && ROOT=$ROOT bash "$SCRIPT" halt || true
  rm -rf "$ROOT"
}
trap cleanup EXIT

mkdir -p "$ROOT/rootfs"
tar --zstd --numeric-owner -xpf "$TARBALL" -C "$ROOT/rootfs"
S=$ROOT/rootfs/etc/systemd/system
mkdir -p "$S/multi-user.target.wants"
# N_UNITS services: oneshot + RemainAfterExit (active/exited, no process left
# behind); every 10th exits 1 (failed), so the states are mixed.
for i in $(seq -w 1 "$N_UNITS"); do
  if [ $((10#$i % 10)) -eq 0 ]; then x=/bin/false; else x=/bin/true; fi
  if [ "$UNIT_KIND" = running ] && [ "$x" = /bin/true ]; then
    printf '[Service]\nExecStart=/bin/sleep infinity\n' > "$S/bench-$i.service"
  else
    printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=%s\n' "$x" > "$S/bench-$i.service"
  fi
  ln -s "../bench-$i.service" "$S/multi-user.target.wants/bench-$i.service"
done
echo "== booting systemd with $N_UNITS generated units" >&2
PID=$(ROOT=$ROOT bash "$SCRIPT" boot); BOOTED=1
for _ in $(seq 600); do
  st=$(nsenter -t "$PID" -m -u -i -n -p -r -w systemctl is-system-running 2>/dev/null || true)
  case $st in running|degraded) break ;; esac; sleep 0.1
done
echo "   system state: $st" >&2
BUS=unix:path=/proc/$PID/root/run/dbus/system_bus_socket
CG=$(cat "$ROOT/cgroup")
LOADED=$(nsenter -t "$PID" -m -u -i -n -p -r -w systemctl list-units --all --no-legend --plain | wc -l)

start_hostmedic() {  # $1 name, $2 refresh_interval, $3 resources, $4 resource_pressure; prints "pid addr"
  cat > "$ROOT/$1.toml" <<EOF
[host]
enabled = false
[hwmon]
enabled = false
[pressure]
enabled = false
[systemd]
bus_address = "$BUS"
user_managers = "none"
refresh_interval = "$2"
resources = $3
resource_pressure = ${4:-false}
cgroup_root = "$CG"
EOF
  "$BIN" --config "$ROOT/$1.toml" --web.listen-address 127.0.0.1:0 serve > /dev/null 2> "$ROOT/$1.log" &
  local pid=$!
  for _ in $(seq 100); do grep -q 'message=listening' "$ROOT/$1.log" && break; sleep 0.1; done
  echo "$pid $(grep -o 'address=[0-9.:]*' "$ROOT/$1.log" | head -1 | cut -d= -f2)"
}
read -r HM_PID HM_ADDR <<<"$(start_hostmedic hostmedic 5m '["service"]')"
read -r HMN_PID HMN_ADDR <<<"$(start_hostmedic hostmedic-noresources 5m '[]')"
read -r HMP_PID HMP_ADDR <<<"$(start_hostmedic hostmedic-pressure 5m '["service"]' true)"
read -r HM0_PID HM0_ADDR <<<"$(start_hostmedic hostmedic-nocache 0s '["service"]')"

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
NE_PORT=19100; while ! port_free $NE_PORT; do NE_PORT=$((NE_PORT + 1)); done
DBUS_SYSTEM_BUS_ADDRESS=$BUS "$NODE_EXPORTER" --collector.disable-defaults --collector.systemd \
  --collector.systemd.enable-restarts-metrics --web.listen-address=127.0.0.1:$NE_PORT \
  > "$ROOT/node_exporter.log" 2>&1 &
NE_PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$NE_PORT/metrics" && break; sleep 0.1; done

HM_URL=http://$HM_ADDR/metrics
HMN_URL=http://$HMN_ADDR/metrics
HMP_URL=http://$HMP_ADDR/metrics
HM0_URL=http://$HM0_ADDR/metrics
NE_URL=http://127.0.0.1:$NE_PORT/metrics
# All must really see the units (and succeed) before timing anything.
hm_units=$(curl -s "$HM_URL" | grep -c '^hostmedic_systemd_unit_info{manager="system",name="bench-' || true)
hm0_units=$(curl -s "$HM0_URL" | grep -c '^hostmedic_systemd_service_restarts_total{manager="system",name="bench-' || true)
hmn_units=$(curl -s "$HMN_URL" | grep -c '^hostmedic_systemd_unit_info{manager="system",name="bench-' || true)
# Units whose resources are read (cgroup directory present: CPU seconds
# exported), and the cgroup directories systemd keeps for the bench units.
hm_res=$(curl -s "$HM_URL" | grep -c '^hostmedic_systemd_unit_cpu_seconds_total{manager="system",name="bench-' || true)
hm_res_all=$(curl -s "$HM_URL" | grep -c '^hostmedic_systemd_unit_cpu_seconds_total{' || true)
hmn_res=$(curl -s "$HMN_URL" | grep -c '^hostmedic_systemd_unit_cpu_seconds_total{' || true)
# Per-unit pressure series: none by default, 6 per unit read with it on.
hm_psi=$(curl -s "$HM_URL" | grep -c '^hostmedic_systemd_unit_pressure_stalled_seconds_total{' || true)
hmp_psi=$(curl -s "$HMP_URL" | grep -c '^hostmedic_systemd_unit_pressure_stalled_seconds_total{' || true)
cg_dirs=$(find "$CG/system.slice" -maxdepth 1 -name 'bench-*.service' -type d | wc -l)
ne_units=$(curl -s "$NE_URL" | grep -c '^node_systemd_unit_state{name="bench-.*state="active"' || true)
hm_ok=$(curl -s "$HM_URL" | grep -c 'hostmedic_scrape_collector_success{collector="systemd"} 1' || true)
ne_ok=$(curl -s "$NE_URL" | grep -c 'node_scrape_collector_success{collector="systemd"} 1' || true)
echo "   units seen: hostmedic $hm_units (success $hm_ok), no resources $hmn_units, uncached $hm0_units, node_exporter $ne_units (success $ne_ok); loaded in manager: $LOADED" >&2
echo "   resources read: $hm_res bench units ($hm_res_all units in all; $cg_dirs bench cgroup directories exist), without resources: $hmn_res; unit pressure series: $hm_psi by default, $hmp_psi with resource_pressure" >&2
[ "$hm_units" -ge "$N_UNITS" ] && [ "$hmn_units" -ge "$N_UNITS" ] && [ "$hm0_units" -ge "$N_UNITS" ] && [ "$ne_units" -ge "$N_UNITS" ] && [ "$hm_ok" = 1 ] && [ "$ne_ok" = 1 ] \
  && [ "$hm_res" -ge "$cg_dirs" ] && [ "$hmn_res" = 0 ] && [ "$hm_psi" = 0 ] && [ "$hmp_psi" -ge "$hm_res_all" ] \
  || { echo "an exporter does not see the units; logs in $ROOT" >&2; trap - EXIT; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cg_usec() { awk '/^usage_usec/ {print $2}' "$CG/cpu.stat"; }
CLK=$(getconf CLK_TCK)

for _ in $(seq "$WARMUP"); do for u in "$HM_URL" "$HMN_URL" "$HM0_URL" "$NE_URL" "$HMP_URL"; do curl -s -o /dev/null "$u"; done; done
NAMES=(hostmedic hostmedic-noresources hostmedic-nocache node_exporter hostmedic-pressure)
URLS=("$HM_URL" "$HMN_URL" "$HM0_URL" "$NE_URL" "$HMP_URL")
PIDS=("$HM_PID" "$HMN_PID" "$HM0_PID" "$NE_PID" "$HMP_PID")
K="0 1 2 3 4"
declare -a CGU T0 T1 MED CPU ROW
for k in $K; do : > "$ROOT/$k.times"; CGU[k]=0; T0[k]=$(ticks "${PIDS[k]}"); done
echo "== $RUNS scrapes each, in turn" >&2
for _ in $(seq "$RUNS"); do
  for k in $K; do
    c0=$(cg_usec); curl -s -o /dev/null -w '%{time_total}\n' "${URLS[k]}" >> "$ROOT/$k.times"; c1=$(cg_usec)
    CGU[k]=$((CGU[k] + c1 - c0))
  done
done
for k in $K; do T1[k]=$(ticks "${PIDS[k]}"); done

stat() { sort -n "$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; p=a[int(NR*0.9+0.5)]; printf "%.1f %.1f %.1f", m*1000, p*1000, a[1]*1000}'; }
for k in $K; do
  read -r med p90 min <<<"$(stat "$ROOT/$k.times")"
  MED[k]=$med
  cpu=$(awk -v d=$((T1[k] - T0[k])) -v c="$CLK" -v n="$RUNS" 'BEGIN {printf "%.1f", d / c / n * 1000}')
  CPU[k]=$cpu
  sd=$(awk -v u="${CGU[k]}" -v n="$RUNS" 'BEGIN {printf "%.1f", u / n / 1000}')
  ROW[k]="| ${NAMES[k]} | $med | $p90 | $min | $cpu | $sd |"
done
ratio=$(awk -v a="${MED[0]}" -v b="${MED[3]}" 'BEGIN {printf "%.3f", a / b}')
ration=$(awk -v a="${MED[1]}" -v b="${MED[3]}" 'BEGIN {printf "%.3f", a / b}')
ratio0=$(awk -v a="${MED[2]}" -v b="${MED[3]}" 'BEGIN {printf "%.3f", a / b}')
ratiop=$(awk -v a="${MED[4]}" -v b="${MED[3]}" 'BEGIN {printf "%.3f", a / b}')
# Added by resources (on minus off, same run): per scrape, and per unit whose
# cgroup was read (the oneshot units keep no cgroup: then only the one extra
# `ControlGroup` Get per service at a cache miss, which a steady state skips).
d_wall=$(awk -v a="${MED[0]}" -v b="${MED[1]}" 'BEGIN {printf "%+.1f", a - b}')
d_cpu=$(awk -v a="${CPU[0]}" -v b="${CPU[1]}" 'BEGIN {printf "%+.1f", a - b}')
per_unit=$(awk -v a="${MED[0]}" -v b="${MED[1]}" -v n="$hm_res_all" 'BEGIN {printf "%+.1f", (a - b) * 1000 / (n > 0 ? n : 1)}')
per_unit_cpu=$(awk -v a="${CPU[0]}" -v b="${CPU[1]}" -v n="$hm_res_all" 'BEGIN {printf "%+.1f", (a - b) * 1000 / (n > 0 ? n : 1)}')
# Added by per-unit pressure on top of resources (pressure minus on).
psi_unit=$(awk -v a="${MED[4]}" -v b="${MED[0]}" -v n="$hm_res_all" 'BEGIN {printf "%+.1f", (a - b) * 1000 / (n > 0 ? n : 1)}')
psi_unit_cpu=$(awk -v a="${CPU[4]}" -v b="${CPU[0]}" -v n="$hm_res_all" 'BEGIN {printf "%+.1f", (a - b) * 1000 / (n > 0 ? n : 1)}')
echo
echo "systemd $(nsenter -t "$PID" -m -p -r systemctl --version | head -1 | cut -d' ' -f2-3), $N_UNITS generated units ($LOADED loaded), $RUNS scrapes each in turn, $(nproc) CPUs, load $LOAD0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end"
echo "$("$BIN" --version 2>&1 | head -1)"
echo "$("$NODE_EXPORTER" --version 2>&1 | head -1)"
printf '| exporter | median ms | p90 ms | min ms | exporter CPU ms/scrape | systemd+dbus CPU ms/scrape |\n|---|---|---|---|---|---|\n'
for k in $K; do echo "${ROW[k]}"; done
echo "median ratio hostmedic/node_exporter: $ratio (resources on; target <= 0.1), without resources: $ration, with resource_pressure: $ratiop; uncached hostmedic/node_exporter: $ratio0"
echo "resources on - off: $d_wall ms median wall, $d_cpu ms exporter CPU per scrape; cgroups read for $hm_res_all units ($hm_res bench units, $cg_dirs bench cgroup directories): $per_unit us wall, $per_unit_cpu us exporter CPU per unit read"
echo "resource_pressure on - off (resources on): $psi_unit us wall, $psi_unit_cpu us exporter CPU per unit read"
