#!/bin/sh
# nginx through tailor's whole loop: learn it under a workload, generate its profiles,
# run it confined by them and replay the workload, then try the held-out workload.
#
#   examples/nginx/run.sh local       nginx as a local command (tailor learn / enforce)
#   examples/nginx/run.sh container   nginx as a Docker container (learn --container,
#                                     docker run with the generated flags; needs DOCKER_HOST)
#   examples/nginx/run.sh hardened    the container learned, then run by tailor enforce
#                                     --container with the hardened run configuration
#
# Environment: OUT (output directory, default a new temporary one), PORT (local, 18080),
# LOAD (seconds of wrk load, 3), REPLAYS (3), TAILOR (bin/tailor).
# Results: OUT/nginx.rec.json and OUT/nginx.restart.rec.json (local: the second run a
# restart over the first's state), OUT/nginx.profile/, OUT/replay-N.txt (one per replay:
# "enforce-exit N" and the workload's output), OUT/heldout.txt.
set -eu
. "$(dirname "$0")/../lib.sh"
self=$(cd "$(dirname "$0")" && pwd)/run.sh
PORT=${PORT:-18080}
LOAD=${LOAD:-3}
export PORT LOAD

# signal_nginx SIGNAL: reload, reopen or quit the nginx under test (see `nginx -s`).
signal_nginx() {
	if [ -n "${CONTAINER_LABEL:-}" ]; then
		id=$(docker ps -q --filter "label=$CONTAINER_LABEL" --filter status=running)
		[ -n "$id" ] || die "no running container labelled $CONTAINER_LABEL"
		case $1 in reload) s=HUP ;; reopen) s=USR1 ;; quit) s=QUIT ;; esac
		docker kill -s "$s" "$id" >/dev/null
	else
		nginx -p "$PREFIX/" -c nginx.conf -e logs/error.log -s "$1"
	fi
}

# status PATH [CURL-ARGS]: the HTTP status of one request.
status() {
	p=$1; shift
	curl -s -o /dev/null -w '%{http_code}' "$@" "http://127.0.0.1:$PORT$p"
}

# The learning workload: load on /, a 404, reload, log reopen, graceful stop. It fails
# when nginx does not answer, wrk saw any error, or a status is not the expected one.
workload_learn() {
	wait_until 100 curl -sf -o /dev/null "http://127.0.0.1:$PORT/" || die "nginx does not answer on port $PORT"
	out=$(wrk -t2 -c8 -d"${LOAD}s" "http://127.0.0.1:$PORT/")
	echo "$out"
	echo "$out" | grep -q 'requests in' || die "wrk made no requests"
	! echo "$out" | grep -qE 'Socket errors|Non-2xx' || die "wrk saw errors"
	[ "$(status /files/small.txt)" = 200 ] || die "GET /files/small.txt failed"
	[ "$(status /missing)" = 404 ] || die "GET /missing is not 404"
	signal_nginx reload
	signal_nginx reopen
	if [ -z "${CONTAINER_LABEL:-}" ]; then
		# The reopen has happened when the master has given the logs to the worker
		# user: the state the next start finds (and learning across a restart learns).
		wait_until 100 sh -c "[ \"\$(stat -c %U '$PREFIX/logs/access.log')\" = www-data ]" || die "the logs were not reopened"
	fi
	[ "$(status /)" = 200 ] || die "GET / after reload failed"
	signal_nginx quit
	echo "workload: ok"
}

# The held-out workload: requests the learning workload never made. Each line says
# what answered; nothing here fails the script (a gap here is what a longer learning run
# would close), except nginx not answering at all.
workload_heldout() {
	wait_until 100 curl -sf -o /dev/null "http://127.0.0.1:$PORT/" || die "nginx does not answer on port $PORT"
	echo "HEAD /                 $(status / -I)"
	echo "GET /files/ (listing)  $(status /files/)"
	echo "GET /files/large.bin   $(status /files/large.bin) $(curl -s "http://127.0.0.1:$PORT/files/large.bin" | wc -c) bytes"
	echo "POST /                 $(status / -X POST -d x=1)"
	signal_nginx quit
}

# prefix DIR: a fresh nginx prefix (config, document root, logs, temp) in DIR.
prefix() {
	mkdir -p "$1/logs" "$1/tmp"
	cp -r "$TARGETS/www" "$1/www"
	sed "s/@PORT@/$PORT/" "$TARGETS/nginx.conf.in" >"$1/nginx.conf"
}

# serve_enforced N WORKLOAD: run nginx under tailor enforce and WORKLOAD against it.
serve_enforced() {
	enforce_served "$1" "$2" "$OUT/nginx.profile" nginx -p "$PREFIX/" -c nginx.conf -e logs/error.log
}

local_loop() {
	targets
	# Its own directory, readable by the www-data workers wherever OUT is (a test's
	# temporary directory is private to root).
	PREFIX=$(mktemp -d /tmp/tailor-nginx-prefix-XXXXXX)
	chmod 755 "$PREFIX"
	trap 'rm -rf "$PREFIX"' EXIT
	export PREFIX
	prefix "$PREFIX"
	# Learned across a restart: nginx's master gives its logs to the worker user when it
	# reopens them (the workload's reopen), and its next start opens logs that are no
	# longer root's (CAP_DAC_OVERRIDE). The second run starts over the state the first
	# left, and the bundle is made from both; the replays then start over the state
	# the run before them left, as a restarted server does.
	"$TAILOR" learn -o "$OUT/nginx.rec.json" --workload "$self workload-learn" -- nginx -p "$PREFIX/" -c nginx.conf -e logs/error.log
	"$TAILOR" learn -o "$OUT/nginx.restart.rec.json" --workload "$self workload-learn" -- nginx -p "$PREFIX/" -c nginx.conf -e logs/error.log
	"$TAILOR" generate -o "$OUT/nginx.profile" "$OUT/nginx.rec.json" "$OUT/nginx.restart.rec.json"
	local_replays
}

hardened_loop() {
	targets --images
	PORT=8080
	CONTAINER_LABEL=tailor.example=nginx-$$
	export PORT CONTAINER_LABEL
	hardened_replays nginx "$NGINX_IMAGE" "$CONTAINER_LABEL"
}

container_loop() {
	targets --images
	PORT=8080
	CONTAINER_LABEL=tailor.example=nginx-$$
	export PORT CONTAINER_LABEL
	container_replays nginx "$NGINX_IMAGE" "$CONTAINER_LABEL"
}

case ${1:-local} in
workload-learn) workload_learn ;;
workload-heldout) workload_heldout ;;
inspected) inspect_copy "$2" && "$self" "$3" ;;
local | container | hardened)
	[ "$(id -u)" = 0 ] || die "needs root (tailor learn and enforce)"
	OUT=${OUT:-$(mktemp -d /tmp/tailor-nginx-XXXXXX)}
	mkdir -p "$OUT"
	export OUT
	case $1 in container) container_loop ;; hardened) hardened_loop ;; *) local_loop ;; esac
	echo "results in $OUT"
	;;
*) die "usage: $0 [local|container|hardened]" ;;
esac
