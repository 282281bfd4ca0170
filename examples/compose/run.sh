#!/bin/sh
# A Compose project through tailor's whole loop: learn both services under one
# workload, generate a bundle per service and compose.tailor.yml, check that
# docker-compose accepts the override, then bring the project up confined with
# tailor enforce --compose, replay the workload and count the anomalies.
#
#   examples/compose/run.sh run     (needs root, docker-compose and DOCKER_HOST)
#
# Environment: OUT (output directory, default a new temporary one), TAILOR (bin/tailor).
# Results: OUT/recordings/ (learn), OUT/tailor/ (generate: web/, cache/,
# compose.tailor.yml, index.json), OUT/anomalies.jsonl, OUT/enforce.log.
set -eu
. "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
self=$here/run.sh
PROJECT=tailor-example-$$

# The workload, run from the host inside web's network namespace (which cache shares):
# a page from nginx, a write and a read in redis.
workload() {
	wait_until 100 curl -sf http://127.0.0.1:8080/ || die "nginx does not answer"
	curl -sf http://127.0.0.1:8080/ | grep -q . || die "nginx served nothing"
	wait_until 100 sh -c "redis-cli -p 6379 ping | grep -q PONG" || die "redis does not answer"
	[ "$(redis-cli -p 6379 set tailor example)" = OK ] || die "SET failed"
	[ "$(redis-cli -p 6379 get tailor)" = example ] || die "GET failed"
	echo "workload: ok"
}

run() {
	targets --images
	export NGINX_IMAGE REDIS_IMAGE
	"$TAILOR" learn --compose "$here/compose.yml" --project-name "$PROJECT" -o "$OUT/recordings" --workload "$self workload"
	"$TAILOR" generate --compose "$OUT/recordings" -o "$OUT/tailor"
	# Compose v1 reads seccomp=PATH relative to its working directory: the override's
	# directory.
	(cd "$OUT/tailor" && docker-compose -p "$PROJECT" -f "$here/compose.yml" -f compose.tailor.yml config >/dev/null) ||
		die "docker-compose refused compose.tailor.yml"
	echo "docker-compose config: compose.tailor.yml accepted"
	rc=0
	"$TAILOR" enforce --compose "$here/compose.yml" --project-name "$PROJECT" --profile "$OUT/tailor" \
		--workload "$self workload" --anomalies "$OUT/anomalies.jsonl" --fail-on-anomaly --down >"$OUT/enforce.log" 2>&1 || rc=$?
	cat "$OUT/enforce.log"
	# Every line but the closing summary record is an anomaly.
	echo "anomalies: $({ grep -v '"kind":"summary"' "$OUT/anomalies.jsonl" 2>/dev/null || true; } | wc -l)"
	cat "$OUT/anomalies.jsonl" 2>/dev/null || true
	echo "enforce-exit $rc"
	[ "$rc" = 0 ] || die "the confined project failed: see $OUT/enforce.log"
}

case ${1:-run} in
workload) workload ;;
run)
	[ "$(id -u)" = 0 ] || die "needs root (tailor learn and enforce)"
	OUT=${OUT:-$(mktemp -d /tmp/tailor-compose-XXXXXX)}
	mkdir -p "$OUT"
	export OUT
	run
	echo "results in $OUT"
	;;
*) die "usage: $0 [run]" ;;
esac
