#!/usr/bin/env bash
# make bench-compare: tokencache against its baselines, one load generator.
#
# Starts private Redis, a single etcd member and a 3-member etcd cluster on
# loopback (installing redis-server and etcd-server with apt-get when they
# are missing), and MariaDB through scripts/mariadb.sh unless
# TOKENCACHE_TEST_MYSQL_DSN is set; builds tokencache and tokencache-bench
# (the bench/baselines module); runs `tokencache-bench suite compare`
# (every case interleaved A B A B …, ROUNDS rounds) against nodes of the
# tokencache binary and prints the table of medians and ratios; stops
# everything it started, by pid.
#
#   ROUNDS=3 DURATION=10s WARMUP=2s OUT=bench/results bench/scripts/compare.sh
#
# TOKENCACHE_BIN=bin/tokencache and TOKENCACHE_BENCH_BIN=bin/tokencache-bench
# reuse built binaries (make bench-compare passes both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
warmup=${WARMUP:-2s}
out=${OUT:-bench/results}
state=$(mktemp -d "${TMPDIR:-/tmp}/tokencache-compare-XXXXXX")
mariadb_started=""

cleanup() {
	local rc=$?
	"$here/etcd.sh" stop "$state" || true
	"$here/redis.sh" stop "$state" || true
	if [ -n "$mariadb_started" ]; then
		scripts/mariadb.sh stop "$state/mariadb" || true
	fi
	rm -rf "$state"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# An assignment fails the script when the start fails; eval "$(…)" would not.
started=$("$here/redis.sh" start "$state")
eval "$started"
started=$("$here/etcd.sh" start "$state" 1)
eval "$started"
started=$("$here/etcd.sh" start "$state" 3)
eval "$started"
echo "redis $REDIS; etcd $ETCD; etcd (3 members) $ETCD3" >&2

dsn=${TOKENCACHE_TEST_MYSQL_DSN:-}
if [ -z "$dsn" ] && [ -x scripts/mariadb.sh ]; then
	# As scripts/test.sh does: start prints TOKENCACHE_TEST_MYSQL_DSN=….
	mkdir -p "$state/mariadb"
	mariadb_started=1
	started=$(scripts/mariadb.sh start "$state/mariadb")
	eval "$started"
	dsn=${TOKENCACHE_TEST_MYSQL_DSN:-}
fi
if [ -z "$dsn" ]; then
	echo "no MariaDB (set TOKENCACHE_TEST_MYSQL_DSN or add scripts/mariadb.sh): validate-miss is skipped, issue uses SQLite" >&2
fi

bin=${TOKENCACHE_BIN:-}
if [ -z "$bin" ]; then
	bin="$state/tokencache"
	CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/tokencache
fi
benchbin=${TOKENCACHE_BENCH_BIN:-}
if [ -z "$benchbin" ]; then
	benchbin="$state/tokencache-bench"
	(cd bench/baselines && CGO_ENABLED=0 go build -trimpath -o "$benchbin" ./cmd/tokencache-bench)
fi

mkdir -p "$out"
"$benchbin" suite compare --binary "$bin" \
	--redis "$REDIS" --etcd "$ETCD" --etcd3 "$ETCD3" --mysql-dsn "$dsn" \
	--rounds "$rounds" --duration "$duration" --warmup "$warmup" \
	--out "$out/compare.json" | tee "$out/compare.txt"
