#!/usr/bin/env bash
# Webhook accept latency under load: a release hostmedic with the receiver
# enabled (bearer auth, one matching dry-run rule restarting the alert's
# unit, journal fsync'd per request) on 127.0.0.1, loaded by wrk with benches/webhook.lua at ~500
# alerts/s (1 alert per request, then 10 alerts per request at ~50 req/s).
# The journal sits on the disk under target/ (real fsync); set JOURNAL_DIR=/dev/shm
# to see the cost without the disk; SKIP_BUILD=1 reuses target/release/hostmedic.
# Usage: benches/webhook.sh [duration, default 30s]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30s}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin hostmedic >&2
BASE=${JOURNAL_DIR:-$PWD/target}
DIR=$(mktemp -d -p "$BASE" hostmedic-webhook-bench.XXXXXX)
TOKEN=bench-token-0123456789
printf '%s\n' "$TOKEN" >"$DIR/token"
cat >"$DIR/hostmedic.toml" <<TOML
[host]
enabled = false
[hwmon]
enabled = false
[fleet]
identity = "bench-host"
[receiver]
enabled = true
bearer_token_file = "$DIR/token"
journal_path = "$DIR/journal.jsonl"
state_path = "$DIR/state.json"
status_path = "$DIR/status.json"
[[remediation]]
name = "bench"
alertname = "BenchAlert"
mode = "dry-run"
actions = [{ type = "systemd", op = "restart", unit = "{{ labels.unit }}" }]
TOML
target/release/hostmedic --config "$DIR/hostmedic.toml" --web.listen-address 127.0.0.1:0 --log.level info serve 2>"$DIR/hostmedic.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
  ADDR=$(grep -o 'address=[0-9.:]*' "$DIR/hostmedic.log" | head -1 | cut -d= -f2 || true)
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$DIR/hostmedic.log"; exit 1; }
echo "hostmedic pid $PID on $ADDR, journal in $DIR ($(df -T "$DIR" | awk 'NR==2{print $2}'))"
URL="http://$ADDR/api/v1/alerts"
echo "== baseline in the same run: GET /-/healthy (no body, no journal), 10 connections, ~500 req/s"
printf 'function delay() return 19 end\n' >"$DIR/plain.lua"
wrk -t2 -c10 -d"$DURATION" --latency -s "$DIR/plain.lua" "http://$ADDR/-/healthy"
echo "== 1 alert/request, 10 connections, 19 ms pause per connection (~500 req/s = ~500 alerts/s)"
wrk -t2 -c10 -d"$DURATION" --latency -s benches/webhook.lua "$URL" -- 1 19 "$TOKEN"
echo "== 10 alerts/request, 10 connections, 190 ms pause per connection (~50 req/s = ~500 alerts/s)"
wrk -t2 -c10 -d"$DURATION" --latency -s benches/webhook.lua "$URL" -- 10 190 "$TOKEN"
echo "hostmedic memory: $(grep -E '^(VmHWM|VmRSS)' /proc/$PID/status | tr -s ' \t\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "journal lines written: $(wc -l <"$DIR/journal.jsonl")"
echo "events: $(grep -o '"event":"[a-z_]*"' "$DIR/journal.jsonl" | sort | uniq -c | tr -s ' \n' ' ')"
# Every alert must have been routed to the rule and its dry-run journaled,
# or the numbers above measured some other path (a refusal, say).
ALERTS=$(grep -c '"event":"alert"' "$DIR/journal.jsonl" || true)
DRY=$(grep -c '"result":"dry_run"' "$DIR/journal.jsonl" || true)
echo "alerts journaled: $ALERTS, dry-run action results: $DRY"
[ "$ALERTS" -gt 0 ] && [ "$DRY" -eq "$ALERTS" ] || { echo "FAIL: not every alert reached its dry-run action"; exit 1; }
