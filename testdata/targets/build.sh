#!/bin/sh
# build.sh prepares nginx and redis as targets for tailor's examples, e2e test and bench:
#
#   - www/: nginx's document root (index.html, files/ with a small and a 4 MiB file);
#   - nginx.conf.in, redis.conf: local-command configs (see the files);
#   - nginx.tar, redis.tar: minimal root filesystems assembled from the installed Debian
#     packages (binary, its ldd libraries and loader, config, /etc/passwd), no registry;
#   - with --images: Docker images imported from those tarballs (needs a daemon that
#     `docker` reaches, e.g. through DOCKER_HOST).
#
# Everything is cached under $TAILOR_TARGETS_CACHE (default $XDG_CACHE_HOME/tailor-targets,
# else /var/cache/tailor-targets) in a directory named by a hash of the inputs: this script,
# the config files and the installed package versions. A second run only prints.
# It prints shell assignments to eval: TARGETS (the cache directory), NGINX_IMAGE, REDIS_IMAGE.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
images=false
[ "${1:-}" = --images ] && images=true

for cmd in nginx redis-server ldd dpkg-query sha256sum tar; do
	command -v "$cmd" >/dev/null || { echo "build.sh: $cmd not found (make setup installs nginx redis-server)" >&2; exit 1; }
done

versions=$(dpkg-query -W -f '${Package}=${Version}\n' nginx redis-server libc6)
hash=$( { cat "$here/build.sh" "$here/nginx.conf.in" "$here/redis.conf"; echo "$versions"; } | sha256sum | cut -c1-16)
cache=${TAILOR_TARGETS_CACHE:-${XDG_CACHE_HOME:-/var/cache}/tailor-targets}
out=$cache/$hash

# copy_with_libs ROOT BIN...: BIN, every library ldd names and the loader, at their host paths.
copy_with_libs() {
	root=$1; shift
	for bin in "$@"; do
		for f in "$bin" $(ldd "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
			mkdir -p "$root$(dirname "$f")"
			cp -L "$f" "$root$f"
		done
	done
}

# base ROOT: the directories and user database both images need.
base() {
	root=$1
	mkdir -p "$root/etc" "$root/tmp" "$root/dev" "$root/proc" "$root/sys"
	chmod 1777 "$root/tmp"
	printf 'root:x:0:0:root:/root:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nredis:x:100:101:redis:/data:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nwww-data:x:33:\nredis:x:101:\nnogroup:x:65534:\n' >"$root/etc/group"
	printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
	printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
}

# pack ROOT TAR: a reproducible tarball (sorted, fixed time; owners kept: redis owns /data).
pack() {
	tar --sort=name --mtime=@0 --numeric-owner -C "$1" -cf "$2" .
}

if [ ! -f "$out/done" ]; then
	rm -rf "$out.tmp"
	mkdir -p "$out.tmp/www/files"
	printf '<html><body>tailor example</body></html>\n' >"$out.tmp/www/index.html"
	printf 'a small file\n' >"$out.tmp/www/files/small.txt"
	# 4 MiB of a fixed pattern: a large file for sendfile, the same bytes every build.
	yes 'tailor large file line' | head -c 4194304 >"$out.tmp/www/files/large.bin"
	cp "$here/nginx.conf.in" "$here/redis.conf" "$out.tmp/"

	r=$out.tmp/rootfs-nginx
	base "$r"
	copy_with_libs "$r" /usr/sbin/nginx
	mkdir -p "$r/etc/nginx" "$r/srv/nginx/logs" "$r/srv/nginx/tmp" "$r/var/www"
	cp /etc/nginx/mime.types "$r/etc/nginx/"
	cp -r "$out.tmp/www" "$r/srv/nginx/www"
	sed 's/@PORT@/8080/' "$here/nginx.conf.in" >"$r/srv/nginx/nginx.conf"
	pack "$r" "$out.tmp/nginx.tar"

	r=$out.tmp/rootfs-redis
	base "$r"
	copy_with_libs "$r" /usr/bin/redis-server
	mkdir -p "$r/etc/redis" "$r/data"
	chown 100:101 "$r/data"
	cp "$here/redis.conf" "$r/etc/redis/redis.conf"
	pack "$r" "$out.tmp/redis.tar"

	rm -rf "$out.tmp/rootfs-nginx" "$out.tmp/rootfs-redis"
	echo "$versions" >"$out.tmp/versions"
	touch "$out.tmp/done"
	rm -rf "$out"
	mv "$out.tmp" "$out"
fi

nginx_image=tailor-targets/nginx:$hash
redis_image=tailor-targets/redis:$hash
if $images; then
	docker version >/dev/null 2>&1 || { echo "build.sh: --images: no docker daemon answers (set DOCKER_HOST)" >&2; exit 1; }
	if ! docker image inspect "$nginx_image" >/dev/null 2>&1; then
		docker import \
			--change 'CMD ["/usr/sbin/nginx", "-p", "/srv/nginx/", "-c", "nginx.conf", "-e", "logs/error.log"]' \
			"$out/nginx.tar" "$nginx_image" >/dev/null
	fi
	if ! docker image inspect "$redis_image" >/dev/null 2>&1; then
		docker import \
			--change 'CMD ["/usr/bin/redis-server", "/etc/redis/redis.conf", "--port", "6379", "--dir", "/data"]' \
			--change 'USER redis' \
			"$out/redis.tar" "$redis_image" >/dev/null
	fi
fi
echo "TARGETS=$out"
echo "NGINX_IMAGE=$nginx_image"
echo "REDIS_IMAGE=$redis_image"
