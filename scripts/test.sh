#!/usr/bin/env bash
# make test: every test of the project, with the real parts it needs.
#
# Installs (when missing) and starts a private MariaDB on loopback for the
# MySQL persister tests, makes sure nginx is installed for the forward-auth
# end-to-end test, runs the packages with goroutines under the race
# detector and the rest normally, and stops everything it started.
# TOKENCACHE_TEST_REQUIRE=1 makes an integration test whose dependency is
# missing fail instead of skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export TOKENCACHE_TEST_REQUIRE=1
export GOFLAGS=${GOFLAGS:-}
tmp=$(mktemp -d)
cleanup() {
	status=$?
	[ -x scripts/mariadb.sh ] && scripts/mariadb.sh stop "$tmp/mariadb" >/dev/null 2>&1 || true
	rm -rf "$tmp"
	exit $status
}
trap cleanup EXIT INT TERM

scripts/apt-install.sh nginx-light

if [ -x scripts/mariadb.sh ]; then
	eval "$(scripts/mariadb.sh start "$tmp/mariadb")"
	export TOKENCACHE_TEST_MYSQL_DSN
fi

race_pkgs=(./cache/... ./replica/... ./tokens/... ./token/jwt/... ./httpapi/... ./cluster/...)
mapfile -t all_pkgs < <(go list ./... | sed "s|^$(go list -m)|.|")
other_pkgs=()
for p in "${all_pkgs[@]}"; do
	case "$p" in
	./cache | ./cache/* | ./tokens | ./tokens/* | ./httpapi | ./httpapi/* | ./cluster | ./cluster/*) ;;
	*) other_pkgs+=("$p") ;;
	esac
done

echo "== go vet"
go vet ./...
(cd bench/baselines && go vet ./...)
echo "== race: ${race_pkgs[*]}"
go test -race -count=1 -timeout 12m "${race_pkgs[@]}"
echo "== tests: ${other_pkgs[*]}"
go test -count=1 -timeout 12m "${other_pkgs[@]}"
echo "== tests: bench/baselines (its own module: the baselines, the compare suite, the chart, tokencache-bench)"
(cd bench/baselines && go test -count=1 -timeout 12m ./...)
echo "== bench smoke: tokencache bench --spawn 1 --duration 2s, and tokencache-bench with --chart"
go test -tags benchsmoke -run Smoke -count=1 -timeout 5m ./bench/
(cd bench/baselines && go test -tags benchsmoke -run Smoke -count=1 -timeout 5m ./cmd/tokencache-bench/)
echo "== all tests passed"
