#!/usr/bin/env bash
# Private Redis for the bench baselines, on a free loopback port, no
# persistence, data in STATE_DIR.
#
#   bench/scripts/redis.sh start STATE_DIR   # prints REDIS=redis://127.0.0.1:PORT
#   bench/scripts/redis.sh stop STATE_DIR    # stops it by pid
#
# Installs the Debian package redis-server when redis-server is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
	echo "usage: $0 start|stop STATE_DIR" >&2
	exit 2
fi

case $cmd in
start)
	need_pkg redis-server redis-server
	mkdir -p "$state/redis"
	port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
		--save '' --appendonly no --dir "$state/redis" \
		--daemonize yes --pidfile "$state/redis/redis.pid" --logfile "$state/redis/redis.log"
	wait_until 20 "redis on port $port" bash -c "[ -s '$state/redis/redis.pid' ] && redis-cli -h 127.0.0.1 -p $port ping | grep -q PONG"
	echo "REDIS=redis://127.0.0.1:$port"
	;;
stop)
	stop_pidfile "$state/redis/redis.pid"
	rm -rf "$state/redis"
	;;
*)
	echo "usage: $0 start|stop STATE_DIR" >&2
	exit 2
	;;
esac
