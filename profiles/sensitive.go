package profiles

import (
	"path"
	"slices"
	"strings"
)

// sensitivePrefixes are paths whose every file matters on its own: generate never
// widens a rule under them, neither segment by segment nor to dir/*.
var sensitivePrefixes = []string{
	"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh/", "/etc/ssl/private/",
	"/proc/sys/", "/sys/", "/root/", "/boot/", "/dev/mem", "/dev/kmem", "/proc/kcore",
	"/run/docker.sock", "/var/run/docker.sock", "/run/secrets/", "/var/lib/docker/",
}

// notContent are sensitive paths whose file contents a right on a directory above them
// does not reach: docker's sockets are connected to, never opened for writing, and
// /run/secrets is a read-only mount in containers. They do not stop the
// created-then-written widening, which a daemon's pid file in /run needs.
var notContent = []string{"/run/docker.sock", "/var/run/docker.sock", "/run/secrets/"}

// SensitivePath reports whether p is a path never to widen: credentials, keys, the
// kernel's tunables and memory, Docker's socket and state, anything under a .ssh or
// .gnupg directory.
func SensitivePath(p string) bool {
	for _, pre := range sensitivePrefixes {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return true
		}
	}
	return strings.Contains(p, "/.ssh/") || strings.HasSuffix(p, "/.ssh") || strings.Contains(p, "/.gnupg/")
}

// HoldsSensitive reports whether dir is a sensitive path or has one beneath it whose
// contents a rule for dir/* (Landlock grants beneath a directory, recursively) or a
// file right on dir would reach. A home directory (/home/NAME) counts: its .ssh and
// .gnupg are sensitive.
func HoldsSensitive(dir string) bool {
	if dir == "/" || dir == "/home" || path.Dir(dir) == "/home" || SensitivePath(dir) || SensitivePath(dir+"/") {
		return true
	}
	for _, pre := range sensitivePrefixes {
		if strings.HasPrefix(pre, dir+"/") && !slices.Contains(notContent, pre) {
			return true
		}
	}
	return false
}

// sharedDirs are working directories whose files programs name by absolute path
// whatever their own directory (a temporary file in /tmp is in /tmp wherever the
// program ran).
var sharedDirs = []string{"/tmp", "/var/tmp", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/run",
	"/dev/shm", "/srv", "/opt", "/mnt", "/media"}

// systemTrees are the binary, library, configuration and pseudo-filesystem trees:
// rules relative to a working directory in them would grant a program's system files
// wherever it runs.
var systemTrees = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/run", "/nix",
	"/etc", "/proc", "/sys", "/dev"}

// RelocatableDir reports whether rules beneath dir may be written relative to it
// (@{cwd}) and resolved to another such directory: an absolute, clean path that is not
// "/", a top-level directory, a shared directory itself (/tmp, /var/lib, /srv...; a
// directory beneath one is fine), under a system, configuration or pseudo-filesystem
// tree, or holding sensitive files (a home directory, /root).
func RelocatableDir(dir string) bool {
	if dir == "" || !path.IsAbs(dir) || path.Clean(dir) != dir || strings.Count(dir, "/") < 2 ||
		strings.ContainsAny(dir, "@{}") || HoldsSensitive(dir) || slices.Contains(sharedDirs, dir) {
		return false
	}
	return !slices.ContainsFunc(systemTrees, func(d string) bool { return dir == d || strings.HasPrefix(dir, d+"/") })
}

// SensitiveBeneath reports whether any sensitive path lies beneath dir, those a
// directory right does not reach (Docker's socket) included: a rule for DIR/** with
// write would let a target connect to the socket.
func SensitiveBeneath(dir string) bool {
	return slices.ContainsFunc(sensitivePrefixes, func(pre string) bool { return strings.HasPrefix(pre, dir+"/") })
}
