#!/usr/bin/env bash
# Private etcd for the bench baselines: one member, or a 3-member cluster,
# on free loopback ports with data dirs in STATE_DIR.
#
#   bench/scripts/etcd.sh start STATE_DIR 1   # prints ETCD=etcd://127.0.0.1:PORT
#   bench/scripts/etcd.sh start STATE_DIR 3   # prints ETCD3=etcd://h:p1,h:p2,h:p3
#   bench/scripts/etcd.sh stop STATE_DIR      # stops every member by pid
#
# Installs the Debian package etcd-server when etcd is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
	echo "usage: $0 start STATE_DIR 1|3 | stop STATE_DIR" >&2
	exit 2
fi

healthy() { curl -fsS "http://127.0.0.1:$1/health" | grep -q '"health":"true"'; }

case $cmd in
start)
	n=${3:-1}
	if [ "$n" != 1 ] && [ "$n" != 3 ]; then
		echo "error: members must be 1 or 3, got $n" >&2
		exit 2
	fi
	need_pkg etcd etcd-server
	cluster_name="bench$n"
	names=() clients=() peers=() initial=""
	for i in $(seq 1 "$n"); do
		names+=("${cluster_name}m$i")
		clients+=("$(free_port)")
		peers+=("$(free_port)")
		initial+="${initial:+,}${cluster_name}m$i=http://127.0.0.1:${peers[$((i - 1))]}"
	done
	endpoints=""
	for i in $(seq 0 $((n - 1))); do
		dir="$state/etcd/${names[$i]}"
		mkdir -p "$dir"
		# --unsafe-no-fsync stays off: puts are durable, as tokencache's are.
		etcd \
			--name "${names[$i]}" --data-dir "$dir/data" \
			--listen-client-urls "http://127.0.0.1:${clients[$i]}" \
			--advertise-client-urls "http://127.0.0.1:${clients[$i]}" \
			--listen-peer-urls "http://127.0.0.1:${peers[$i]}" \
			--initial-advertise-peer-urls "http://127.0.0.1:${peers[$i]}" \
			--initial-cluster "$initial" --initial-cluster-token "$cluster_name-$$" \
			--initial-cluster-state new --log-level warn \
			>"$dir/etcd.log" 2>&1 &
		echo $! >"$state/etcd/${names[$i]}.pid"
		endpoints+="${endpoints:+,}127.0.0.1:${clients[$i]}"
	done
	for i in $(seq 0 $((n - 1))); do
		wait_until 60 "etcd member ${names[$i]}" healthy "${clients[$i]}"
	done
	if [ "$n" = 1 ]; then
		echo "ETCD=etcd://$endpoints"
	else
		echo "ETCD3=etcd://$endpoints"
	fi
	;;
stop)
	for f in "$state"/etcd/*.pid; do
		[ -e "$f" ] || continue
		stop_pidfile "$f"
	done
	rm -rf "$state/etcd"
	;;
*)
	echo "usage: $0 start STATE_DIR 1|3 | stop STATE_DIR" >&2
	exit 2
	;;
esac
