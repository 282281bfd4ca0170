# Shared by examples/*/run.sh (sourced, POSIX sh). Needs root, bin/tailor and
# testdata/targets/build.sh's packages.

repo=$(cd "$(dirname "$0")/../.." && pwd)
TAILOR=${TAILOR:-$repo/bin/tailor}
REPLAYS=${REPLAYS:-3}
export TAILOR

die() { echo "$0: $*" >&2; exit 1; }

# wait_until TRIES CMD...: run CMD every 0.1 s until it succeeds, at most TRIES times.
wait_until() {
	tries=$1; shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -ge "$tries" ] && return 1
		sleep 0.1
	done
}

# enforce_served N WORKLOAD PROFILE SERVER...: run SERVER under tailor enforce with
# PROFILE and `$self WORKLOAD` against it, then print the anomalies (one JSON line each)
# and both exit statuses. The workload stops the server gracefully; it is killed only
# if it did not stop.
enforce_served() {
	# Its own names: sh has no locals, and the callers loop over $n.
	es_n=$1 es_workload=$2 es_profile=$3
	shift 3
	"$TAILOR" enforce --profile "$es_profile" --anomalies "$OUT/anomalies-$es_n.jsonl" -- "$@" >"$OUT/enforce-$es_n.log" 2>&1 &
	pid=$!
	wl=0
	"$self" "$es_workload" || wl=$?
	wait_until 100 sh -c "! kill -0 $pid" || kill "$pid"
	rc=0
	wait "$pid" || rc=$?
	# Every line but the closing summary record is an anomaly.
	echo "anomalies: $({ grep -v '"kind":"summary"' "$OUT/anomalies-$es_n.jsonl" 2>/dev/null || true; } | wc -l)"
	cat "$OUT/anomalies-$es_n.jsonl" 2>/dev/null || true
	echo "enforce-exit $rc workload-exit $wl"
}

# targets [--images]: build (or find cached) the targets and set TARGETS, NGINX_IMAGE, REDIS_IMAGE.
targets() {
	vars=$("$repo/testdata/targets/build.sh" "$@") || die "building the targets failed"
	eval "$vars"
}

# docker_flags BUNDLE: the `docker run` flags of BUNDLE/docker-run.txt, without the AppArmor
# option when the kernel has no AppArmor (the profile cannot be loaded there).
docker_flags() {
	flags=$(grep -v '^#' "$1/docker-run.txt")
	if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ]; then
		echo "$0: no AppArmor in this kernel: running without $1/apparmor.profile" >&2
		flags=$(echo "$flags" | sed 's/--security-opt apparmor=[^ ]*//')
	fi
	echo "$flags"
}

# container_replays NAME IMAGE LABEL: learn a container of IMAGE under the learning
# workload, generate its bundle, then run it REPLAYS times with docker run and the
# bundle's flags (and once more under the held-out workload), each workload entering the
# container's network namespace. Results go to OUT as the local loops' do.
container_replays() {
	name=example-$1-$$
	label=$3
	trap 'docker rm -f $(docker ps -aq --filter "label=$label") >/dev/null 2>&1 || true' EXIT
	docker create --name "$name" --label "$label" --network none "$2" >/dev/null
	"$TAILOR" learn --container "$name" -o "$OUT/$1.rec.json" --workload "$self workload-learn"
	"$TAILOR" generate -o "$OUT/$1.profile" "$OUT/$1.rec.json"
	flags=$(docker_flags "$OUT/$1.profile")
	failed=0
	for n in $(seq "$REPLAYS") heldout; do
		wl=workload-learn
		[ "$n" = heldout ] && wl=workload-heldout
		# shellcheck disable=SC2086 # the flags are words
		id=$(docker run -d --label "$label" --network none $flags "$2")
		pid=$(docker inspect -f '{{.State.Pid}}' "$id")
		rc=0
		nsenter -t "$pid" -n "$self" "$wl" >"$OUT/replay-$n.txt" 2>&1 || rc=$?
		exit_code=$(docker wait "$id")
		# The server's own output tells why a confined run failed.
		docker logs "$id" >"$OUT/container-$n.log" 2>&1 || true
		docker rm "$id" >/dev/null
		echo "enforce-exit $exit_code workload-exit $rc" >>"$OUT/replay-$n.txt"
		[ "$n" = heldout ] && continue
		echo "replay $n under docker run with the generated profile: $(tail -n 1 "$OUT/replay-$n.txt")"
		if [ "$exit_code $rc" != "0 0" ]; then
			failed=1
			echo "container output of replay $n:"
			tail -n 40 "$OUT/container-$n.log"
		fi
	done
	mv "$OUT/replay-heldout.txt" "$OUT/heldout.txt"
	echo "held-out workload under docker run with the generated profile:"
	cat "$OUT/heldout.txt"
	[ "$failed" = 0 ] || die "a replay failed: see $OUT/replay-*.txt"
}

# local_replays: run the server under tailor enforce (the calling script's
# serve_enforced) REPLAYS times with the learning workload, then once with the held-out
# workload, and fail if a replay did not end cleanly. Results go to OUT.
local_replays() {
	failed=0
	for n in $(seq "$REPLAYS"); do
		serve_enforced "$n" workload-learn >"$OUT/replay-$n.txt" 2>&1
		r=$(tail -n 1 "$OUT/replay-$n.txt")
		echo "replay $n under tailor enforce: $r, $(grep '^anomalies:' "$OUT/replay-$n.txt")"
		[ "$r" = "enforce-exit 0 workload-exit 0" ] || failed=1
	done
	serve_enforced heldout workload-heldout >"$OUT/heldout.txt" 2>&1
	echo "held-out workload under tailor enforce:"
	cat "$OUT/heldout.txt"
	[ "$failed" = 0 ] || die "a replay failed: see $OUT/replay-*.txt and $OUT/enforce-*.log"
}

# inspect_copy FILE: `docker inspect` of the running copy tailor enforce --container
# made of the container labelled $COPY_LABEL (a copy keeps the original's labels and
# adds tailor.copy-of).
inspect_copy() {
	id=$(docker ps -q --filter "label=$COPY_LABEL" --filter label=tailor.copy-of --filter status=running)
	[ -n "$id" ] || die "no running copy labelled $COPY_LABEL"
	docker inspect "$id" >"$1"
}

# hardened_replays NAME IMAGE LABEL: learn a container of IMAGE under the learning
# workload, generate its bundle, then run it REPLAYS times with tailor enforce
# --container, which applies the profiles and the hardened run configuration, under
# the learning workload (and once more under the held-out one). Each workload first
# saves `docker inspect` of the running copy as OUT/inspect-N.json. Results:
# OUT/replay-N.txt (tailor's and the workload's output, then "enforce-exit N"),
# OUT/heldout.txt.
hardened_replays() {
	name=example-$1-$$
	COPY_LABEL=$3
	export COPY_LABEL
	trap 'docker rm -f $(docker ps -aq --filter "label=$COPY_LABEL") >/dev/null 2>&1 || true' EXIT
	docker create --name "$name" --label "$COPY_LABEL" --network none "$2" >/dev/null
	"$TAILOR" learn --container "$name" -o "$OUT/$1.rec.json" --workload "$self workload-learn"
	"$TAILOR" generate -o "$OUT/$1.profile" "$OUT/$1.rec.json"
	failed=0
	for n in $(seq "$REPLAYS") heldout; do
		wl=workload-learn
		[ "$n" = heldout ] && wl=workload-heldout
		rc=0
		"$TAILOR" enforce --profile "$OUT/$1.profile" --container "$name" \
			--workload "$self inspected $OUT/inspect-$n.json $wl" >"$OUT/replay-$n.txt" 2>&1 || rc=$?
		echo "enforce-exit $rc" >>"$OUT/replay-$n.txt"
		[ "$n" = heldout ] && continue
		echo "replay $n under tailor enforce --container (hardened): $(tail -n 1 "$OUT/replay-$n.txt")"
		[ "$rc" = 0 ] || { failed=1; tail -n 40 "$OUT/replay-$n.txt"; }
	done
	mv "$OUT/replay-heldout.txt" "$OUT/heldout.txt"
	echo "held-out workload under tailor enforce --container (hardened):"
	cat "$OUT/heldout.txt"
	[ "$failed" = 0 ] || die "a replay failed: see $OUT/replay-*.txt"
}
