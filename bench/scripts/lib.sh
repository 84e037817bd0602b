# Shared helpers of the bench scripts (sourced, not run).

# need_pkg BINARY PACKAGE…: install the Debian packages when BINARY is missing.
need_pkg() {
	local bin=$1
	shift
	if command -v "$bin" >/dev/null 2>&1; then
		return 0
	fi
	local apt_install
	apt_install="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/apt-install.sh"
	if [ -x "$apt_install" ]; then
		"$apt_install" "$@"
		command -v "$bin" >/dev/null 2>&1
		return
	fi
	echo "installing $* (for $bin)" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "error: $bin is missing and installing $* needs root" >&2
		return 1
	fi
	# Containers have no init: a package must not start its own service.
	local policy=/usr/sbin/policy-rc.d created=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		created=1
	fi
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
	if [ -n "$created" ]; then rm -f "$policy"; fi
	command -v "$bin" >/dev/null 2>&1
}

# free_port: print a loopback TCP port nobody listens on now.
free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
				echo "$port"
				return 0
			fi
		fi
	done
	echo "error: no free port found" >&2
	return 1
}

# wait_until SECONDS WHAT COMMAND…: poll COMMAND every 0.1 s.
wait_until() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "error: timed out after ${secs}s waiting for $what" >&2
			return 1
		fi
		sleep 0.1
	done
}

# stop_pidfile FILE: stop the process whose pid FILE holds (TERM, then KILL
# after 10 s) and remove FILE.
stop_pidfile() {
	local f=$1 pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "pid $pid did not stop; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$f"
}
