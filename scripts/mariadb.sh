#!/usr/bin/env bash
# mariadb.sh start|stop|status DIR — a private MariaDB server for the tests.
#
#   start DIR   installs mariadb-server when it is missing (scripts/apt-install.sh,
#               which never starts the system service), initialises a data dir
#               under DIR, starts mariadbd on 127.0.0.1 on a free port as a
#               private process (not the system service), creates the database
#               "tokencache" and the user "tokencache" with a random password,
#               and prints, for eval, the lines
#                 export TOKENCACHE_TEST_MYSQL_DSN='tokencache:PW@tcp(127.0.0.1:PORT)/tokencache'
#                 export TOKENCACHE_TEST_MYSQL_PID=PID
#                 export TOKENCACHE_TEST_MYSQL_SOCKET=DIR/mysqld.sock
#               The DSN is go-sql-driver/mysql's form. The user may create and
#               drop databases (the tests make one per test). Root has no
#               password and is reachable only through the socket.
#               If DIR already holds a running server, start prints its lines
#               again. A DIR whose server was stopped is started again with its
#               data (tests use that to restart the database).
#   stop DIR    stops the server by the pid it recorded (SIGTERM, then SIGKILL
#               after 30 s) and waits for it to exit. Data stay in DIR.
#   status DIR  exits 0 if the server of DIR is running.
#
# Logs go to DIR/error.log; progress messages to stderr; stdout carries only
# the export lines.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data
sock=$dir/mysqld.sock
pidfile=$dir/mariadbd.pid
envfile=$dir/env
here=$(cd "$(dirname "$0")" && pwd)

find_bin() {
	local n
	for n in "$@"; do
		if command -v "$n" >/dev/null 2>&1; then command -v "$n"; return 0; fi
		for d in /usr/sbin /usr/local/sbin /usr/bin; do
			if [ -x "$d/$n" ]; then echo "$d/$n"; return 0; fi
		done
	done
	return 1
}

running() {
	[ -f "$pidfile" ] || return 1
	local pid
	pid=$(cat "$pidfile")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# port_free PORT: nothing listens on 127.0.0.1:PORT (or on any address).
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

client() {
	"$mariadb" --no-defaults --protocol=socket --socket="$sock" -uroot "$@"
}

start() {
	if running; then
		cat "$envfile"
		return 0
	fi
	if ! find_bin mariadbd mysqld >/dev/null; then
		"$here/apt-install.sh" mariadb-server mariadb-client >&2
	fi
	mariadbd=$(find_bin mariadbd mysqld) || { echo "mariadbd not found after installing mariadb-server" >&2; exit 1; }
	mariadb=$(find_bin mariadb mysql) || { echo "mariadb client not found" >&2; exit 1; }
	install_db=$(find_bin mariadb-install-db mysql_install_db) || { echo "mariadb-install-db not found" >&2; exit 1; }

	local user_opt=()
	[ "$(id -u)" -eq 0 ] && user_opt=(--user=root)
	local fresh=""
	if [ ! -d "$data/mysql" ]; then
		fresh=1
		mkdir -p "$data" "$dir/tmp"
		echo "mariadb.sh: initialising $data" >&2
		"$install_db" --no-defaults --datadir="$data" "${user_opt[@]}" \
			--auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
			{ cat "$dir/install.log" >&2; exit 1; }
	fi
	mkdir -p "$dir/tmp"

	# A restart keeps its port, so that clients holding the DSN reconnect.
	local port="" tries
	[ -f "$dir/port" ] && port=$(cat "$dir/port")
	for tries in 1 2 3 4 5 6 7 8; do
		if [ -z "$port" ] || ! port_free "$port"; then
			[ -f "$dir/port" ] && [ "$tries" -eq 1 ] && { echo "mariadb.sh: port $port is taken" >&2; }
			port=$((20000 + RANDOM % 40000))
			port_free "$port" || { port=""; continue; }
		fi
		rm -f "$pidfile" "$sock"
		# Test settings: loopback only, no binary log, a small buffer pool.
		# Durability is left at the server's default (flush on commit), so
		# that a killed server keeps every committed row, as in production.
		"$mariadbd" --no-defaults --datadir="$data" "${user_opt[@]}" \
			--bind-address=127.0.0.1 --port="$port" --socket="$sock" \
			--pid-file="$pidfile" --log-error="$dir/error.log" --tmpdir="$dir/tmp" \
			--skip-log-bin --skip-name-resolve --max-connections=500 \
			--innodb-buffer-pool-size=256M --innodb-log-file-size=128M \
			>/dev/null 2>&1 &
		local bg=$!
		local i
		for i in $(seq 1 300); do
			if client -e 'SELECT 1' >/dev/null 2>&1; then break; fi
			if ! kill -0 "$bg" 2>/dev/null; then break; fi
			sleep 0.1
		done
		if client -e 'SELECT 1' >/dev/null 2>&1; then
			break
		fi
		kill "$bg" 2>/dev/null || true
		wait "$bg" 2>/dev/null || true
		if grep -q "Bind on TCP/IP port\|Address already in use" "$dir/error.log" 2>/dev/null; then
			echo "mariadb.sh: port $port was taken, trying another" >&2
			port=""
			continue
		fi
		echo "mariadb.sh: mariadbd did not start; last lines of $dir/error.log:" >&2
		tail -n 30 "$dir/error.log" >&2 || true
		exit 1
	done
	running || { echo "mariadb.sh: mariadbd did not start (no free port?)" >&2; exit 1; }
	echo "$port" >"$dir/port"

	local pw
	if [ -n "$fresh" ] || [ ! -f "$dir/password" ]; then
		pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)
		umask 077
		echo "$pw" >"$dir/password"
		client <<-SQL
			CREATE DATABASE IF NOT EXISTS tokencache CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
			CREATE USER IF NOT EXISTS 'tokencache'@'127.0.0.1' IDENTIFIED BY '$pw';
			CREATE USER IF NOT EXISTS 'tokencache'@'localhost' IDENTIFIED BY '$pw';
			GRANT ALL PRIVILEGES ON *.* TO 'tokencache'@'127.0.0.1';
			GRANT ALL PRIVILEGES ON *.* TO 'tokencache'@'localhost';
		SQL
	fi
	pw=$(cat "$dir/password")
	{
		echo "export TOKENCACHE_TEST_MYSQL_DSN='tokencache:$pw@tcp(127.0.0.1:$port)/tokencache'"
		echo "export TOKENCACHE_TEST_MYSQL_PID=$(cat "$pidfile")"
		echo "export TOKENCACHE_TEST_MYSQL_SOCKET='$sock'"
	} >"$envfile"
	chmod 600 "$envfile"
	echo "mariadb.sh: mariadbd $(cat "$pidfile") listening on 127.0.0.1:$port" >&2
	cat "$envfile"
}

stop() {
	running || { rm -f "$pidfile"; return 0; }
	local pid i
	pid=$(cat "$pidfile")
	kill -CONT "$pid" 2>/dev/null || true # a paused server cannot shut down
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "mariadb.sh: mariadbd $pid did not stop in 30s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
}

case "$cmd" in
start) start ;;
stop) stop ;;
status) running ;;
*) usage ;;
esac
