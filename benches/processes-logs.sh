#!/usr/bin/env bash
# Benchmark of the processes and logfile collectors (issue 6), release build.
#  1. Scrape latency of /metrics with only the processes collector (top-K 5 and
#     three watches, one on cmdline) while N extra processes run, compared in
#     the same run with `ps` producing the same top list.
#  2. Log follower throughput: a SIZE_MB log file appears under the watched
#     path; time until the matched-line counter reaches its final value,
#     compared with `grep -c` counting the same lines.
# Usage: benches/processes-logs.sh     (needs curl, hyperfine, procps)
#   N=500 SIZE_MB=256 benches/processes-logs.sh
# Prints a Markdown block for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
SIZE_MB=${SIZE_MB:-256}

DIR=$(mktemp -d /tmp/hmplXXXXXX)
HPID=""; SLEEPERS=()
cleanup() {
  [ -n "$HPID" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null || true
  for p in "${SLEEPERS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

echo "building release binary..." >&2
cargo build --release --quiet
BIN=target/release/hostmedic

for _ in $(seq "$N"); do sleep 3600 & SLEEPERS+=($!); done

cat >"$DIR/hm.toml" <<TOML
[web]
listen_address = "127.0.0.1:0"
[host]
enabled = false
[hwmon]
enabled = false
[processes]
top_k = 5
sample_interval = "5s"
[[processes.watch]]
name = "sleepers"
comm = "^sleep\$"
[[processes.watch]]
name = "bench-cmdline"
cmdline = "^sleep 3600\$"
[[processes.watch]]
name = "none"
comm = "^no-such-process\$"
[logfile]
interval = "10ms"
[[logfile.watch]]
file = "$DIR/app.log"
patterns = { critical = "CRITICAL", traceback = "^Traceback" }
TOML

"$BIN" --config "$DIR/hm.toml" --log.level info serve 2>"$DIR/hm.log" &
HPID=$!
for _ in $(seq 100); do grep -q 'message=listening' "$DIR/hm.log" && break; sleep 0.1; done
ADDR=$(grep -o 'address=[0-9.:]*' "$DIR/hm.log" | head -1 | cut -d= -f2)
URL="http://$ADDR/metrics"
curl -sf "$URL" >/dev/null
PROCS=$(ls -d /proc/[0-9]* | wc -l)

hyperfine -N --warmup 5 --runs 100 --export-json "$DIR/p.json" \
  "curl -sf $URL" \
  "sh -c 'ps -eo pid,user,comm,args,time,lstart --sort=-pcpu | head -6'" >&2
read -r HM_MS PS_MS < <(python3 -c "
import json; r=json.load(open('$DIR/p.json'))['results']
print(' '.join('%.2f' % (x['mean']*1000) for x in r))")

# Log file: built aside, then moved in place (it "appears", so it is read
# from its beginning). 1 line in 50 is CRITICAL, 1 in 200 a Traceback.
python3 - "$DIR/app.log.tmp" "$SIZE_MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
block = []
for i in range(1000):
    if i % 50 == 0: block.append("2026-11-22T08:00:00Z CRITICAL worker %d lost its database connection\n" % i)
    elif i % 200 == 1: block.append("Traceback (most recent call last):\n")
    else: block.append("2026-11-22T08:00:00Z INFO request id=%08d path=/api/v1/items status=200 took=12ms\n" % i)
block = "".join(block).encode()
with open(path, "wb") as f:
    for _ in range(mb * 1024 * 1024 // len(block)): f.write(block)
PY
EXPECT=$(grep -c CRITICAL "$DIR/app.log.tmp")
BYTES=$(stat -c %s "$DIR/app.log.tmp")
cat "$DIR/app.log.tmp" >/dev/null # both readers start from the page cache
start=$(date +%s.%N)
mv "$DIR/app.log.tmp" "$DIR/app.log"
while ! curl -sf "$URL" | grep -q "pattern=\"critical\"} $EXPECT\$"; do sleep 0.02; done
end=$(date +%s.%N)
FOLLOW_S=$(python3 -c "print('%.3f' % ($end - $start))")
# --output=pipe: GNU grep stops at the first match when stdout is /dev/null.
hyperfine -N --warmup 1 --runs 5 --output=pipe --export-json "$DIR/g.json" \
  "grep -c CRITICAL $DIR/app.log" "grep -cE ^Traceback $DIR/app.log" >&2
GREP_S=$(python3 -c "
import json; r=json.load(open('$DIR/g.json'))['results']
print('%.3f' % sum(x['mean'] for x in r))")

python3 - <<PY
mb = $BYTES / 1048576
print(f"""## processes and logfile (issue 6)
Machine: {$(nproc)} CPUs (shared with other builds), release build, \`benches/processes-logs.sh\`.

| what | hostmedic | peer (same run) | ratio |
|---|---|---|---|
| scrape /metrics, processes collector only, $PROCS processes (top-5 + 3 watches) | $HM_MS ms | \`ps ... --sort=-pcpu \| head -6\`: $PS_MS ms | {$HM_MS / $PS_MS:.2f}x |
| follow a {mb:.0f} MiB log, 2 patterns, until the counter is final | $FOLLOW_S s ({mb / $FOLLOW_S:.0f} MiB/s) | \`grep -c\` once per pattern: $GREP_S s | {$FOLLOW_S / $GREP_S:.2f}x |
""")
PY
