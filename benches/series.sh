#!/usr/bin/env bash
# Series count of a realistic host, per metric family, for docs/fleet.md:
# a real systemd 252 with 200 generated services next to its own units, a
# private Docker engine with 20 containers, this machine's host, sensors and
# processes; hostmedic with systemd.unit_state_series = "all" and "current",
# both scraped by a real Prometheus (tests/e2e/fleet_series.rs does the
# work and checks the counts; this prints its table).
#
#   sudo benches/series.sh
#
# Needs root (systemd in namespaces, dockerd), Debian's prometheus,
# docker.io, zstd, debootstrap (first run only): scripts/test installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "benches/series.sh: needs root" >&2; exit 2; }

out=$(CI=true cargo nextest run --test e2e --no-capture \
  -E 'test(=fleet_series::series_of_a_host_with_200_units_and_20_containers)' 2>&1) || {
  echo "$out" | tail -40 >&2; exit 1; }
echo "$out" | grep '^series per family' | head -1
echo
echo '| family | all | current |'
echo '|---|---:|---:|'
echo "$out" | awk '$1 == "series" && NF == 4 { printf "| %s | %s | %s |\n", $2, $3, $4 }'
