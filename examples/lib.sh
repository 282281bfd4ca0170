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
