#!/usr/bin/env bash
# make cluster: starts three tokencache nodes on loopback as separate
# processes (configs/cluster-node{1,2,3}.yaml, data under ./data/n1..n3),
# prints their addresses and the admin token, and stops them on Ctrl-C.
#
# CLUSTER_TLS=1 (make cluster-tls): mutual TLS between the nodes and
# encrypted gossip, as a cluster reachable from other hosts must run: a
# development CA and one certificate per node under ./data/tls (made once
# with `tokencache tls`), and a gossip key in ./data/gossip.key.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TOKENCACHE_BIN:-bin/tokencache}
mkdir -p data
# One admin token for the three nodes, generated once and kept in ./data.
if [ -z "${TOKENCACHE_ADMIN_TOKEN:-}" ]; then
	if [ ! -s data/cluster-admin.token ]; then
		(umask 077 && head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >data/cluster-admin.token)
	fi
	TOKENCACHE_ADMIN_TOKEN=$(cat data/cluster-admin.token)
	export TOKENCACHE_ADMIN_TOKEN
fi

tls_env() { :; }
if [ -n "${CLUSTER_TLS:-}" ]; then
	if [ ! -s data/tls/tokencache-ca.pem ]; then
		"$bin" tls ca create --dir data/tls
		for i in 1 2 3; do "$bin" tls cert create --dir data/tls --node "n$i"; done
	fi
	if [ ! -s data/gossip.key ]; then
		(umask 077 && head -c 32 /dev/urandom | base64 >data/gossip.key)
	fi
	TOKENCACHE_CLUSTER_ENCRYPT_KEY=$(cat data/gossip.key)
	export TOKENCACHE_CLUSTER_ENCRYPT_KEY
	tls_env() {
		echo "TOKENCACHE_CLUSTER_TLS_CA_FILE=data/tls/tokencache-ca.pem" \
			"TOKENCACHE_CLUSTER_TLS_CERT_FILE=data/tls/n$1.pem" \
			"TOKENCACHE_CLUSTER_TLS_KEY_FILE=data/tls/n$1-key.pem"
	}
fi

pids=()
stopping=""
stop() {
	stopping=1
	trap - INT TERM EXIT
	echo
	echo "stopping ${#pids[@]} nodes"
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop INT TERM EXIT

for i in 1 2 3; do
	mkdir -p "data/n$i"
	# Its own session: Ctrl-C reaches only this script, whose stop() sends
	# each node one SIGTERM (a second signal would make a node exit at once,
	# skipping its graceful shutdown).
	# shellcheck disable=SC2046 # tls_env prints NAME=value words
	setsid env $(tls_env "$i") "$bin" serve --config "configs/cluster-node$i.yaml" >>"data/n$i/tokencache.log" 2>&1 &
	pids+=($!)
done

# Wait until every node is ready (joined and caught up).
for i in 1 2 3; do
	for _ in $(seq 1 150); do
		if curl -fsS -o /dev/null "http://127.0.0.1:808$i/readyz" 2>/dev/null; then break; fi
		kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "node n$i exited; see data/n$i/tokencache.log" >&2; exit 1; }
		sleep 0.2
	done
done

security="on loopback, without TLS (make cluster-tls for mutual TLS and gossip encryption)"
[ -z "${CLUSTER_TLS:-}" ] || security="with mutual TLS (certificates in data/tls) and encrypted gossip (data/gossip.key)"
cat <<MSG
tokencache cluster of 3 nodes is running $security (logs in data/n1..n3/tokencache.log):
  n1  http://127.0.0.1:8081  gossip 127.0.0.1:7947  raft 127.0.0.1:8301  pid ${pids[0]}
  n2  http://127.0.0.1:8082  gossip 127.0.0.1:7948  raft 127.0.0.1:8302  pid ${pids[1]}
  n3  http://127.0.0.1:8083  gossip 127.0.0.1:7949  raft 127.0.0.1:8303  pid ${pids[2]}
admin token (also in data/cluster-admin.token):
  $TOKENCACHE_ADMIN_TOKEN
try:
  $bin cluster status --addr http://127.0.0.1:8081 --admin-token \$(cat data/cluster-admin.token)
press Ctrl-C to stop the cluster
MSG
wait -n "${pids[@]}" || true
[ -n "$stopping" ] || echo "a node exited; stopping the others (see data/n*/tokencache.log)" >&2
