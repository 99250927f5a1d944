#!/usr/bin/env bash
# The warehouse on a real Ballista cluster across hosts (issue 33). Hosts are
# network namespaces this script makes, joined by veth pairs to a bridge in a
# namespace of its own (nothing on the machine's own network changes):
#
#   wbc-sched  10.231.0.1  `wangban cluster scheduler`
#   wbc-exec1  10.231.0.2  `wangban cluster executor`
#   wbc-exec2  10.231.0.3  `wangban cluster executor`
#   wbc-client 10.231.0.4  `wangban kpi|sql|warehouse refresh|serve`, engine df://10.231.0.1:50050
#
# The snapshot is on a path every host reads (namespaces share the file
# system, as NFS mounts at the same path would). It checks:
#  1. every golden KPI, and each by district, equals the local engine's answer
#     (CLI), and `serve` with `warehouse.engine = "df://…"` answers /api/kpi the same;
#  2. a query that outlives its time limit cancels its job on the scheduler;
#  3. two refreshes during a long query leave its snapshot, and its answer, intact;
#  4. an executor killed with `kill -9` midway: the scheduler drops it within
#     15 s, and the query completes on the survivor or fails clearly within
#     its time limit (never hangs); a new query is answered;
#  5. the scheduler killed and restarted: the query under way fails clearly,
#     and new queries work again.
# It prints the local and cluster time of each KPI. Needs root (ip netns) and
# a wangban built with `--features ballista`: WANGBAN_BIN=path, or it builds one.
# Usage: tests/cluster/netns.sh [VOLUME]   (cases a year; default 20000)
# NETNS_DATA=DIR: run only check 1 (the KPIs, timed) on the data directory
# DIR instead of a simulated year, e.g. the 10M-case warehouse that
# `bench/warehouse.sh` inflates (its KPIs cover 2025). It is only read.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
VOLUME="${1:-20000}"
if [ -n "${WANGBAN_BIN:-}" ]; then
  BIN="$WANGBAN_BIN"
else
  cargo build -q -p wangban --features ballista --locked
  BIN="$CARGO_TARGET_DIR/debug/wangban"
fi
[ "$(id -u)" = 0 ] || { echo "error: the cluster test makes network namespaces: run it as root"; exit 1; }

WORK="$(mktemp -d /tmp/wangban_cluster.XXXXXX)"
DATA="$WORK/data"
SCHED=10.231.0.1:50050
ENGINE="df://$SCHED"
HOSTS=(wbc-sched wbc-exec1 wbc-exec2 wbc-client)
ADDRS=(10.231.0.1 10.231.0.2 10.231.0.3 10.231.0.4)
FAILURES=()
fail() { echo "CLUSTER TEST FAILED: $*"; FAILURES+=("$*"); }

cleanup() {
  for pid in $(jobs -p); do kill -9 "$pid" 2>/dev/null || true; done
  for ns in "${HOSTS[@]}" wbc-lan; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
cleanup_left_by_a_killed_run() {
  for ns in "${HOSTS[@]}" wbc-lan; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
cleanup_left_by_a_killed_run

echo "== four hosts: network namespaces on a bridge"
ip netns add wbc-lan
ip -n wbc-lan link add br0 type bridge
ip -n wbc-lan link set br0 up
for i in "${!HOSTS[@]}"; do
  ns="${HOSTS[$i]}"
  ip netns add "$ns"
  ip link add "wbc-v$i" netns wbc-lan type veth peer name eth0 netns "$ns"
  ip -n wbc-lan link set "wbc-v$i" master br0 up
  ip -n "$ns" addr add "${ADDRS[$i]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done
on() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

if [ -n "${NETNS_DATA:-}" ]; then
  DATA="$NETNS_DATA"
  echo "== the warehouse of $DATA"
else
echo "== a simulated year ($VOLUME cases) synced and refreshed into $DATA"
"$BIN" simulate --listen 127.0.0.1:0 --from 2025-01-01 --to 2025-12-31 --volume "$VOLUME" --write-config "$WORK/sim.toml" > "$WORK/sim.out" 2>/dev/null &
SIM=$!
for _ in $(seq 1 300); do grep -q court_platform "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
"$BIN" --config "$WORK/sim.toml" --data "$DATA" sync --quiet > /dev/null 2>&1
kill "$SIM"
"$BIN" --data "$DATA" warehouse refresh > /dev/null 2>&1
fi

# `ip netns exec` execs the command (no fork), so `$!` is the process itself, to kill -9.
start_scheduler() {
  ip netns exec wbc-sched "$BIN" --data "$WORK/sched" cluster scheduler --listen "$SCHED" >> "$WORK/sched.log" 2>&1 &
  SCHED_PID=$!
}
start_executor() { # N
  local n="$1" addr="${ADDRS[$1]}"
  ip netns exec "wbc-exec$n" "$BIN" --data "$WORK/exec$n" cluster executor --scheduler "$SCHED" --bind-host "$addr" \
    --external-host "$addr" --work-dir "$WORK/exec$n/work" --memory-mb 512 --concurrent-tasks 2 \
    >> "$WORK/exec$n.log" 2>&1 &
  eval "EXEC${n}_PID=$!"
}
# `wangban` on the client host, on the cluster.
client() { RUST_LOG="${RUST_LOG:-warn,warehouse=info}" on wbc-client "$BIN" --data "$DATA" "$@"; }
millis() { date +%s%3N; }

echo "== the scheduler on 10.231.0.1, executors on 10.231.0.2 and 10.231.0.3"
start_scheduler
start_executor 1
start_executor 2
ready=""
for _ in $(seq 1 120); do
  if client kpi online-rate --from 2025-01-01 --to 2025-01-31 --format json --engine "$ENGINE" > /dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { tail -n 20 "$WORK"/*.log; echo "error: the cluster did not answer within 60 s"; exit 1; }

echo "== 1. every golden KPI on the cluster equals the local answer"
printf '%-22s %-16s %9s %9s\n' kpi by local_ms cluster_ms
KPIS=(
  "online-rate business_type" "online-rate month" "end-to-end-rate business_type" "on-time-rate business_type"
  "first-time-right phase" "e-certificate-rate channel" "qc-errors category" "qc-errors -"
  "satisfaction evaluation_channel" "durations -" "durations business_type" "seizures -" "anomalies -"
  "online-rate district" "on-time-rate district" "satisfaction district" "qc-errors district"
)
for entry in "${KPIS[@]}"; do
  read -r name by <<< "$entry"
  args=(kpi "$name" --from 2025-01-01 --to 2025-12-31 --format json)
  [ "$by" = - ] || args+=(--by "$by")
  t0=$(millis); "$BIN" --data "$DATA" "${args[@]}" --engine local > "$WORK/local.json" 2> "$WORK/local.err" || { fail "$name by $by: local: $(tail -n 3 "$WORK/local.err")"; continue; }
  t1=$(millis); client "${args[@]}" --engine "$ENGINE" > "$WORK/cluster.json" 2> "$WORK/cluster.err" || { fail "$name by $by: cluster: $(tail -n 3 "$WORK/cluster.err")"; continue; }
  t2=$(millis)
  printf '%-22s %-16s %9d %9d\n' "$name" "$by" $((t1 - t0)) $((t2 - t1))
  cmp -s "$WORK/local.json" "$WORK/cluster.json" || fail "$name by $by: the cluster's answer differs from the local one: $(diff "$WORK/local.json" "$WORK/cluster.json" | head -n 6)"
done

# The durations' window query over the raw cases, row for row in its ORDER BY
# (Ballista's adaptive planner, which our sessions turn off, returned it out of order).
WINDOW_SQL=$("$BIN" --data "$DATA" kpi durations --from 2025-01-01 --to 2025-12-31 --by business_type --plain-sql \
  | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline()))')
"$BIN" --data "$DATA" sql "$WINDOW_SQL" --format csv --engine local > "$WORK/window-local.csv"
WANGBAN__WAREHOUSE__SQL_TIMEOUT_SECONDS=120 client sql "$WINDOW_SQL" --format csv --engine "$ENGINE" > "$WORK/window-cluster.csv" 2> "$WORK/window.err" \
  || fail "the durations' window query on the cluster: $(tail -n 3 "$WORK/window.err")"
[ "$(wc -l < "$WORK/window-local.csv")" -gt 5 ] || fail "the durations' window query answered no rows locally"
cmp -s "$WORK/window-local.csv" "$WORK/window-cluster.csv" || fail "the durations' window query: the cluster's rows differ from the local ones (or their order)"
echo "   the durations' window query: $(( $(wc -l < "$WORK/window-cluster.csv") - 2 )) rows, in the same order"

if [ -n "${NETNS_DATA:-}" ]; then
  if [ "${#FAILURES[@]}" -gt 0 ]; then echo "cluster test: ${#FAILURES[@]} failure(s)"; exit 1; fi
  echo "cluster test (check 1 only, on $DATA): passed"; exit 0
fi

echo "== 1b. serve on the client host with warehouse.engine = \"$ENGINE\": /api/kpi as locally"
PASSWORD=cluster-password-0123
"$BIN" --data "$DATA" user add --name leader --role leadership --password "$PASSWORD" > /dev/null
WANGBAN__WAREHOUSE__ENGINE="$ENGINE" on wbc-client "$BIN" --data "$DATA" serve --listen 10.231.0.4:0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
BASE=$(sed -n 's/^wangban listening on //p' "$WORK/serve.out")
on wbc-client curl -s -o /dev/null -c "$WORK/jar" -d "username=leader&password=$PASSWORD" "$BASE/login"
on wbc-client curl -s -b "$WORK/jar" "$BASE/api/kpi/on-time-rate?from=2025-01-01&to=2025-12-31&by=district" > "$WORK/api.json"
"$BIN" --data "$DATA" kpi on-time-rate --from 2025-01-01 --to 2025-12-31 --by district --format json --engine local > "$WORK/local.json"
python3 - "$WORK/api.json" "$WORK/local.json" <<'PY' || fail "serve on the cluster: /api/kpi differs from the local answer"
import json, sys
api, local = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if api == local else 1)
PY
page=$(on wbc-client curl -s -o /dev/null -w '%{http_code}' -b "$WORK/jar" "$BASE/")
[ "$page" = 200 ] || fail "serve on the cluster: the leadership page answered $page"
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true

# A long query with a known answer: pairs of cases of different districts in the first nine months.
SLOW="SELECT COUNT(*) AS pairs FROM cases a JOIN cases b ON a.case_no < b.case_no AND a.district <> b.district WHERE a.month <= '2025-09' AND b.month <= '2025-09'"
t0=$(millis)
# The CSV's second line is the answer.
EXPECTED=$("$BIN" --data "$DATA" sql "$SLOW" --format csv --engine local | sed -n 2p)
[ -n "$EXPECTED" ] || { echo "error: the long query gave no answer locally"; exit 1; }
echo "   the long query: $EXPECTED pairs, $(( $(millis) - t0 )) ms locally"
t0=$(millis)
ON_CLUSTER=$(WANGBAN__WAREHOUSE__SQL_TIMEOUT_SECONDS=120 client sql "$SLOW" --format csv --engine "$ENGINE" 2> "$WORK/slow.err" | sed -n 2p)
echo "   on the cluster: $ON_CLUSTER pairs, $(( $(millis) - t0 )) ms"
[ "$ON_CLUSTER" = "$EXPECTED" ] || fail "the long query on the cluster answered ${ON_CLUSTER:-nothing}, not $EXPECTED: $(tail -n 3 "$WORK/slow.err")"

echo "== 2. a query past its time limit cancels its job"
set +e
WANGBAN__WAREHOUSE__SQL_TIMEOUT_SECONDS=2 client sql "$SLOW" --format csv --engine "$ENGINE" > /dev/null 2> "$WORK/cancel.err"
status=$?
set -e
job=$(sed -n 's/.*cancelled the Ballista job.*job="\{0,1\}\([A-Za-z0-9_-]*\).*/\1/p' "$WORK/cancel.err" | head -n 1)
if [ "$status" = 0 ]; then
  fail "the query answered within 2 s: make it longer"
elif ! grep -q "time limit" "$WORK/cancel.err"; then
  fail "the timed-out query did not say so: $(tail -n 3 "$WORK/cancel.err")"
elif [ -z "$job" ]; then
  fail "the timed-out query did not cancel its job: $(tail -n 5 "$WORK/cancel.err")"
else
  state=$(client cluster job "$job" --scheduler "$SCHED")
  for _ in $(seq 1 20); do [ "$state" = running ] || [ "$state" = queued ] || break; sleep 0.5; state=$(client cluster job "$job" --scheduler "$SCHED"); done
  echo "   job $job after its cancellation: $state"
  [ "$state" = failed ] || fail "job $job is $state after its query was cancelled"
fi

echo "== 3. two refreshes during a long query leave its snapshot and answer intact"
snapshot=$("$BIN" --data "$DATA" warehouse status | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot_id"])')
WANGBAN__WAREHOUSE__SQL_TIMEOUT_SECONDS=120 client sql "$SLOW" --format csv --engine "$ENGINE" > "$WORK/during.csv" 2> "$WORK/during.err" &
QUERY=$!
sleep 1
"$BIN" --data "$DATA" warehouse refresh --full > /dev/null 2>&1
"$BIN" --data "$DATA" warehouse refresh --full > /dev/null 2>&1
now=$("$BIN" --data "$DATA" warehouse status | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot_id"])')
if kill -0 "$QUERY" 2>/dev/null; then
  [ -d "$DATA/warehouse/snapshots/$snapshot" ] || fail "snapshot $snapshot was removed under a running query"
  [ "$now" != "$snapshot" ] || fail "the refreshes did not publish a new snapshot"
else
  fail "the long query ended before the refreshes did: make it longer"
fi
wait "$QUERY" || fail "the query during refreshes failed: $(tail -n 3 "$WORK/during.err")"
[ "$(sed -n 2p "$WORK/during.csv")" = "$EXPECTED" ] || fail "the query during refreshes answered $(sed -n 2p "$WORK/during.csv"), not $EXPECTED"
"$BIN" --data "$DATA" warehouse refresh --full > /dev/null 2>&1
[ ! -d "$DATA/warehouse/snapshots/$snapshot" ] || fail "snapshot $snapshot was kept after its query ended and a refresh"

echo "== 4. an executor killed with kill -9 midway through a query"
WANGBAN__WAREHOUSE__SQL_TIMEOUT_SECONDS=120 client sql "$SLOW" --format csv --engine "$ENGINE" > "$WORK/killed.csv" 2> "$WORK/killed.err" &
QUERY=$!
sleep 3
KILLED_AT=$(millis)
kill -9 "$EXEC1_PID"
sleep 0.2
! kill -0 "$EXEC1_PID" 2>/dev/null || fail "executor 1 survived kill -9"
# Meanwhile, how soon a new query is answered again (on the survivor).
(
  while [ $(( $(millis) - KILLED_AT )) -lt 90000 ]; do
    if client kpi satisfaction --from 2025-01-01 --to 2025-12-31 --by district --format json --engine "$ENGINE" > /dev/null 2>&1; then
      echo $(( $(millis) - KILLED_AT )) > "$WORK/recovered"; break
    fi
    sleep 1
  done
) &
PROBE=$!
if timeout 130 tail --pid="$QUERY" -f /dev/null; then
  if wait "$QUERY"; then
    answer=$(sed -n 2p "$WORK/killed.csv")
    echo "   the query under way completed on the survivor $(( ($(millis) - KILLED_AT) / 1000 )) s after the kill: $answer"
    [ "$answer" = "$EXPECTED" ] || fail "the query after the kill answered ${answer:-nothing}, not $EXPECTED"
  else
    echo "   the query under way failed $(( ($(millis) - KILLED_AT) / 1000 )) s after the kill: $(grep -i error "$WORK/killed.err" | tail -n 1 | cut -c1-200)"
    grep -qi "error" "$WORK/killed.err" || fail "the failed query gave no error"
  fi
else
  fail "the query hung after its executor was killed"
fi
wait "$PROBE" || true
# When the scheduler dropped the dead executor (its log's UTC time against the kill's).
noticed=$(grep -m1 "heartbeat timed out" "$WORK/sched.log" | cut -d' ' -f1 || true)
if [ -z "$noticed" ]; then fail "the scheduler never noticed the dead executor"; else
  after=$(( $(date -d "$noticed" +%s%3N) - KILLED_AT ))
  echo "   the scheduler dropped the dead executor $((after / 1000)) s after the kill (at most 14 s by its settings)"
  [ "$after" -le 15000 ] || fail "the dead executor was noticed after $((after / 1000)) s, over 15 s"
fi
if [ ! -s "$WORK/recovered" ]; then fail "no new query was answered within 90 s of the kill"; else
  # Not held to a bound: on this 2-core machine it waits for a task slot the
  # long query's re-run tasks hold (0-42 s seen); recovery itself is the drop above.
  recovered=$(cat "$WORK/recovered")
  echo "   a new query was answered $((recovered / 1000)) s after the kill (in a slot beside the long query's)"
fi
start_executor 1

echo "== 5. the scheduler killed with kill -9 and restarted"
WANGBAN__WAREHOUSE__SQL_TIMEOUT_SECONDS=60 client sql "$SLOW" --format csv --engine "$ENGINE" > /dev/null 2> "$WORK/sched-killed.err" &
QUERY=$!
sleep 3
kill -9 "$SCHED_PID"
t0=$(millis)
if timeout 70 tail --pid="$QUERY" -f /dev/null; then
  if wait "$QUERY"; then fail "the query answered though its scheduler was killed: $(tail -n 2 "$WORK/sched-killed.err")"; else
    echo "   the query under way failed in $(( ($(millis) - t0) / 1000 )) s: $(grep -i error "$WORK/sched-killed.err" | tail -n 1 | cut -c1-160)"
  fi
else
  fail "the query hung after its scheduler was killed"
fi
start_scheduler
t0=$(millis)
back=""
while [ $(( $(millis) - t0 )) -lt 60000 ]; do
  if client kpi online-rate --from 2025-01-01 --to 2025-12-31 --by district --format json --engine "$ENGINE" > "$WORK/after.json" 2>/dev/null; then
    back=$(( $(millis) - t0 )); break
  fi
  sleep 1
done
if [ -z "$back" ]; then fail "no query worked within 60 s of the scheduler's restart"; else
  echo "   queries work again $((back / 1000)) s after the scheduler restarted"
  "$BIN" --data "$DATA" kpi online-rate --from 2025-01-01 --to 2025-12-31 --by district --format json --engine local > "$WORK/local.json"
  cmp -s "$WORK/local.json" "$WORK/after.json" || fail "after the restart the answer differs from the local one"
fi

if [ "${#FAILURES[@]}" -gt 0 ]; then
  echo "== logs"; for f in "$WORK"/sched.log "$WORK"/exec1.log "$WORK"/exec2.log; do echo "-- $f"; tail -n 15 "$f"; done
  echo "cluster test: ${#FAILURES[@]} failure(s)"; exit 1
fi
echo "cluster test: passed"
