#!/usr/bin/env bash
# Soak: memory and file descriptors of a release hostmedic under a steady,
# bounded stream on 127.0.0.1 — SCRAPE_RATE scrapes/s of /metrics (default
# collectors, this machine's /proc and /sys) and ALERT_RATE webhook
# deliveries/s, one alert each, every alert a new fingerprint (so every one
# is remembered for the de-dup window), routed to one dry-run rule. RSS,
# peak RSS and open fds are sampled every SAMPLE seconds and printed as a
# table; every request's answer is checked at the end.
#
# Several binaries can be soaked side by side in ONE run (same machine, same
# minutes): BINS="main=/tmp/hostmedic-main fixed=target/release/hostmedic".
# Each gets its own directory, port and load generators (wrk, with
# benches/webhook.lua for the alerts).
#
# Bounded: wrk stops after DURATION; the script then stops the hostmedic
# processes it started (by PID) and removes its directories (KEEP=1 keeps
# them).
#
# Usage: benches/soak.sh            (defaults below)
#   DURATION=15m ALERT_RATE=5 SCRAPE_RATE=10 DEDUP_WINDOW=1h SAMPLE=60
#   BINS="label=path ..." (default: this tree's release build; SKIP_BUILD=1
#   uses target/release/hostmedic as it is)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-12m}
ALERT_RATE=${ALERT_RATE:-5}
SCRAPE_RATE=${SCRAPE_RATE:-10}
DEDUP_WINDOW=${DEDUP_WINDOW:-1h}
SAMPLE=${SAMPLE:-60}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${BINS:-}" ]; then
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin hostmedic >&2
  BINS="hostmedic=$TARGET/release/hostmedic"
fi
to_secs() { # 90s, 15m, 1h, or plain seconds
  local v=$1
  case $v in
    *h) echo $((${v%h} * 3600)) ;;
    *m) echo $((${v%m} * 60)) ;;
    *s) echo "${v%s}" ;;
    *) echo "$v" ;;
  esac
}
SECS=$(to_secs "$DURATION")
ALERT_DELAY=$((1000 / ALERT_RATE))
SCRAPE_DELAY=$((1000 / SCRAPE_RATE))
BASE=$(mktemp -d -p "${TMPDIR:-/tmp}" hostmedic-soak.XXXXXX)
TOKEN=soak-token-0123456789
printf '%s\n' "$TOKEN" >"$BASE/token"
printf 'function delay() return %d end\n' "$SCRAPE_DELAY" >"$BASE/scrape.lua"

declare -a LABELS PIDS DIRS WRKS
cleanup() {
  for p in "${WRKS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${WRKS[@]:-}" "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$BASE"
}
trap cleanup EXIT

i=0
for spec in $BINS; do
  label=${spec%%=*} bin=${spec#*=}
  [ -x "$bin" ] || { echo "$label: $bin is not an executable"; exit 1; }
  dir="$BASE/$label"
  mkdir -p "$dir"
  cat >"$dir/hostmedic.toml" <<TOML
[fleet]
identity = "bench-host"
[receiver]
enabled = true
bearer_token_file = "$BASE/token"
journal_path = "$dir/journal.jsonl"
state_path = "$dir/state.json"
status_path = "$dir/status.json"
dedup_window = "$DEDUP_WINDOW"
[[remediation]]
name = "soak"
alertname = "BenchAlert"
mode = "dry-run"
actions = [{ type = "systemd", op = "restart", unit = "{{ labels.unit }}" }]
TOML
  "$bin" --config "$dir/hostmedic.toml" --web.listen-address 127.0.0.1:0 --log.level info serve 2>"$dir/hostmedic.log" &
  PIDS[i]=$!
  LABELS[i]=$label
  DIRS[i]=$dir
  i=$((i + 1))
done

for j in "${!PIDS[@]}"; do
  dir=${DIRS[j]} addr=
  for _ in $(seq 100); do
    addr=$(grep -o 'address=[0-9.:]*' "$dir/hostmedic.log" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "${LABELS[j]} did not start:"; cat "$dir/hostmedic.log"; exit 1; }
  echo "${LABELS[j]}: pid ${PIDS[j]} on $addr"
  wrk -t1 -c1 -d"${SECS}s" -s "$BASE/scrape.lua" "http://$addr/metrics" >"$dir/scrape.out" 2>&1 &
  WRKS+=($!)
  wrk -t1 -c1 -d"${SECS}s" -s benches/webhook.lua "http://$addr/api/v1/alerts" -- 1 "$ALERT_DELAY" "$TOKEN" >"$dir/alerts.out" 2>&1 &
  WRKS+=($!)
done
echo "soak: $DURATION, $SCRAPE_RATE scrapes/s and $ALERT_RATE alerts/s per binary, dedup_window $DEDUP_WINDOW, sample every ${SAMPLE}s"

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$2/status"; }
sample() { # minute label pid dir
  local rss hwm fds alerts
  rss=$(kib VmRSS "$3") hwm=$(kib VmHWM "$3")
  fds=$(find "/proc/$3/fd" -mindepth 1 -maxdepth 1 | wc -l)
  alerts=$(grep -c '"event":"alert"' "$4/journal.jsonl" || true)
  printf '%s %s %s %s %s %s\n' "$1" "$2" "$rss" "$hwm" "$fds" "$alerts" >>"$BASE/samples"
}
start=$(date +%s)
for j in "${!PIDS[@]}"; do sample 0 "${LABELS[j]}" "${PIDS[j]}" "${DIRS[j]}"; done
while :; do
  now=$(date +%s)
  next=$((start + (($(cat "$BASE/samples" | wc -l) / ${#PIDS[@]})) * SAMPLE))
  [ "$next" -gt $((start + SECS)) ] && break
  [ "$next" -gt "$now" ] && sleep $((next - now))
  t=$(($(date +%s) - start))
  for j in "${!PIDS[@]}"; do
    kill -0 "${PIDS[j]}" 2>/dev/null || { echo "${LABELS[j]} died"; cat "${DIRS[j]}/hostmedic.log"; exit 1; }
    sample "$(awk -v t="$t" 'BEGIN{printf "%.1f", t/60}')" "${LABELS[j]}" "${PIDS[j]}" "${DIRS[j]}"
  done
done
for p in "${WRKS[@]}"; do wait "$p" || true; done
WRKS=()

echo
echo "== RSS (MiB), peak RSS (MiB), open fds and alerts delivered so far (to the last binary listed), per binary, every ${SAMPLE}s"
awk -v labels="${LABELS[*]}" '
  BEGIN { n = split(labels, L, " "); printf "| minute | alerts |"; for (i = 1; i <= n; i++) printf " %s RSS | %s peak | %s fds |", L[i], L[i], L[i]; printf "\n|---|---|"; for (i = 1; i <= n; i++) printf "---|---|---|"; printf "\n" }
  { order[++m] = $1; rss[$1, $2] = $3; hwm[$1, $2] = $4; fds[$1, $2] = $5; al[$1] = $6 }
  END { for (k = 1; k <= m; k++) { t = order[k]; if (seen[t]++) continue; printf "| %s | %s |", t, al[t]; for (i = 1; i <= n; i++) printf " %.1f | %.1f | %s |", rss[t, L[i]] / 1024, hwm[t, L[i]] / 1024, fds[t, L[i]]; printf "\n" } }
' "$BASE/samples"

echo
fail=0
for j in "${!PIDS[@]}"; do
  dir=${DIRS[j]}
  reqs() { awk '/requests in/ {print $1}' "$1"; }
  bad() { awk '/Non-2xx/ {print $NF}' "$1"; }
  alerts=$(grep -c '"event":"alert"' "$dir/journal.jsonl" || true)
  dry=$(grep -c '"result":"dry_run"' "$dir/journal.jsonl" || true)
  # Growth per delivered alert after the first sample past start (warm-up:
  # allocator arenas, connection buffers, first scrapes). Per remembered
  # alert only while the run is shorter than DEDUP_WINDOW.
  slope=$(awk -v l="${LABELS[j]}" '$2 == l { n++; if (n == 2) { r0 = $3; a0 = $6 } r1 = $3; a1 = $6 }
    END { if (a1 > a0) printf "%.0f B per delivered alert (%.1f -> %.1f MiB over %d alerts after the first sample)", (r1 - r0) * 1024 / (a1 - a0), r0 / 1024, r1 / 1024, a1 - a0; else print "n/a" }' "$BASE/samples")
  echo "${LABELS[j]}: scrapes $(reqs "$dir/scrape.out") (non-2xx $(bad "$dir/scrape.out" || true)), deliveries $(reqs "$dir/alerts.out") (non-2xx $(bad "$dir/alerts.out" || true)), alerts journaled $alerts, dry-run results $dry; RSS growth $slope"
  [ "$alerts" -gt 0 ] && [ "$dry" -eq "$alerts" ] || { echo "FAIL ${LABELS[j]}: not every alert reached its dry-run action"; fail=1; }
  grep -q 'Non-2xx' "$dir/scrape.out" "$dir/alerts.out" && { echo "FAIL ${LABELS[j]}: some requests were not answered 2xx"; fail=1; }
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
exit $fail
