#!/bin/sh
# redis through tailor's whole loop: learn it under a workload, generate its profiles,
# run it confined by them and replay the workload, then try the held-out workload.
#
#   examples/redis/run.sh local       redis-server as a local command (tailor learn / enforce)
#   examples/redis/run.sh container   redis as a Docker container (learn --container,
#                                     docker run with the generated flags; needs DOCKER_HOST)
#   examples/redis/run.sh hardened    the container learned, then run by tailor enforce
#                                     --container with the hardened run configuration
#
# Environment: OUT (output directory, default a new temporary one), PORT (local, 16379),
# REQUESTS (redis-benchmark requests per command, 2000), REPLAYS (3), TAILOR (bin/tailor).
# Results: OUT/redis.rec.json, OUT/redis.profile/, OUT/replay-N.txt (one per replay:
# "enforce-exit N" and the workload's output), OUT/heldout.txt.
set -eu
. "$(dirname "$0")/../lib.sh"
self=$(cd "$(dirname "$0")" && pwd)/run.sh
PORT=${PORT:-16379}
REQUESTS=${REQUESTS:-2000}
export PORT REQUESTS

# The commands redis-benchmark drives while learning.
COMMANDS=ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_600,mset

cli() { redis-cli -p "$PORT" "$@"; }

# The learning workload: redis-benchmark over its command set, BGSAVE (waiting for the
# child to finish), SHUTDOWN. It fails when redis does not answer or a step fails.
workload_learn() {
	wait_until 100 sh -c "redis-cli -p $PORT ping | grep -q PONG" || die "redis does not answer on port $PORT"
	[ "$(cli ping)" = PONG ] || die "PING is not PONG"
	redis-benchmark -q -p "$PORT" -c 10 -n "$REQUESTS" -t "$COMMANDS" | tr '\r' '\n' | grep 'requests per second' || die "redis-benchmark failed"
	cli bgsave | grep -q 'Background saving started' || die "BGSAVE failed"
	wait_until 100 sh -c "redis-cli -p $PORT info persistence | grep -q 'rdb_bgsave_in_progress:0'" || die "BGSAVE did not end"
	cli info persistence | grep -q 'rdb_last_bgsave_status:ok' || die "BGSAVE did not succeed"
	cli shutdown || true # the connection closes as redis exits
	echo "workload: ok"
}

# The held-out workload: commands the learning workload never sent. Each line says what
# redis answered; nothing here fails the script except redis not answering at all.
workload_heldout() {
	wait_until 100 sh -c "redis-cli -p $PORT ping | grep -q PONG" || die "redis does not answer on port $PORT"
	echo "HSET        $(cli hset h f1 v1 f2 v2 2>&1)"
	echo "ZADD        $(cli zadd z 1 a 2 b 2>&1)"
	echo "EVAL        $(cli eval 'return redis.call("incrby", KEYS[1], 5)' 1 counter 2>&1)"
	echo "CONFIG GET  $(cli config get maxmemory 2>&1 | tr '\n' ' ')"
	echo "SAVE        $(cli save 2>&1)"
	cli shutdown nosave || true
}

# serve_enforced N WORKLOAD: run redis-server under tailor enforce and WORKLOAD against it.
serve_enforced() {
	# Every run starts from an empty data directory, as the learning run did: a dump.rdb
	# left by the previous run would be loaded at start-up, which learning never saw.
	rm -rf "$DATA"
	mkdir -p "$DATA"
	enforce_served "$1" "$2" "$OUT/redis.profile" redis-server "$TARGETS/redis.conf" --port "$PORT" --dir "$DATA"
}

local_loop() {
	targets
	DATA=$OUT/data
	mkdir -p "$DATA"
	"$TAILOR" learn -o "$OUT/redis.rec.json" --workload "$self workload-learn" -- redis-server "$TARGETS/redis.conf" --port "$PORT" --dir "$DATA"
	"$TAILOR" generate -o "$OUT/redis.profile" "$OUT/redis.rec.json"
	local_replays
}

hardened_loop() {
	targets --images
	PORT=6379
	export PORT
	hardened_replays redis "$REDIS_IMAGE" "tailor.example=redis-$$"
}

container_loop() {
	targets --images
	PORT=6379
	export PORT
	container_replays redis "$REDIS_IMAGE" "tailor.example=redis-$$"
}

case ${1:-local} in
workload-learn) workload_learn ;;
workload-heldout) workload_heldout ;;
inspected) inspect_copy "$2" && "$self" "$3" ;;
local | container | hardened)
	[ "$(id -u)" = 0 ] || die "needs root (tailor learn and enforce)"
	OUT=${OUT:-$(mktemp -d /tmp/tailor-redis-XXXXXX)}
	mkdir -p "$OUT"
	export OUT TARGETS
	case $1 in container) container_loop ;; hardened) hardened_loop ;; *) local_loop ;; esac
	echo "results in $OUT"
	;;
*) die "usage: $0 [local|container|hardened]" ;;
esac
