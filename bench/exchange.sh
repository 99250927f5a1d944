#!/usr/bin/env bash
# Partners by configuration (issue 31's targets), release build, whole processes:
# - `wangban simulate --exchange-db` writes CASES (default 100,000) registry cases
#   twice (two versions each, with its faults) into a gtmap-style exchange table
#   (BDC_YW_SL) in MariaDB; `wangban sync --connector gtmap` then reads them
#   through the configured adapter into a fresh SQLite store.
#   Target: under 10 s and under 300 MiB.
# - The same through MariaDB's ODBC driver into another fresh store. Target: within 2x.
# - A second sync after every case is written again: 100,000 updates.
# - `wangban partner map --connector gtmap --limit 20`. Target: under 1 s.
# Wall time and peak memory from /usr/bin/time.
# Usage: [CASES=N] [EXCHANGE_URL=mysql://root@127.0.0.1:3306] bench/exchange.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wangban-target}"
cargo build --release -q -p wangban
BIN="$CARGO_TARGET_DIR/release/wangban"
SERVER="${EXCHANGE_URL:-mysql://root@127.0.0.1:3306}"
DB=wangban_bench_exchange
mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
export WANGBAN_EXCHANGE_URL="$SERVER/$DB"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"; mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $DB"' EXIT
N="${CASES:-100000}"
echo "== simulate --exchange-db: $N cases, two versions each"
/usr/bin/time -f "wall %e s, peak %M KiB" "$BIN" simulate --exchange-db "$WANGBAN_EXCHANGE_URL" --exchange-cases "$N" --write-config "$WORK/wangban.toml"
# Pages of 5,000 rows (the simulator's adapter is tuned for tests with 100).
sed -i 's/^page_size = 100$/page_size = 5000/' "$WORK/wangban.toml"
sleep 2
run() { /usr/bin/time -f "wall %e s, peak %M KiB" "$BIN" --config "$WORK/wangban.toml" --data "$WORK/data" "$@"; }
echo "== sync --connector gtmap (into a fresh SQLite store)"
run sync --connector gtmap --quiet
echo "== the same through ODBC (MariaDB's ODBC driver) into another fresh store"
WANGBAN_EXCHANGE_URL="odbc:Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=$DB;User=root;Password=;" \
    /usr/bin/time -f "wall %e s, peak %M KiB" "$BIN" --config "$WORK/wangban.toml" --data "$WORK/data-odbc" sync --connector gtmap --quiet
echo "== every case written again, then sync (updates)"
mariadb -h 127.0.0.1 -u root "$DB" -e "SET time_zone = '+08:00'; UPDATE BDC_YW_SL SET ZT = '登簿', CD_TIME = NOW(6) - INTERVAL 5 SECOND, SYNC_SIGN = 0"
sleep 2
run sync --connector gtmap --quiet
echo "== partner map --connector gtmap --limit 20"
run partner map --connector gtmap --limit 20 > "$WORK/map.txt"
head -n 8 "$WORK/map.txt"
