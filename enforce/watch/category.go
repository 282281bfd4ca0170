package watch

import (
	"path"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// Anomaly categories, modelled on the runtime-detection rules users know (Falco's
// default rules): what kind of attack step an anomaly looks like. docs/anomalies.md
// has the table with a reason per line; the JSON field values are stable.
const (
	CatShell         = "shell-spawned"
	CatExec          = "unexpected-program"
	CatSensitiveRead = "sensitive-file-read"
	CatSystemWrite   = "system-dir-write"
	CatFile          = "file-outside-profile"
	CatOutbound      = "unexpected-outbound-connection"
	CatInbound       = "unexpected-inbound-connection"
	CatPrivilege     = "privilege-change"
	CatNamespace     = "namespace-or-mount-change"
	CatProcessInject = "process-injection"
	CatKernel        = "kernel-tampering"
	CatRawNetwork    = "raw-network-socket"
	CatSocket        = "unexpected-socket-family"
	CatSyscall       = "syscall-outside-profile"
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
)

// subject is what an anomaly is about, as classify needs it.
type subject struct {
	kind       string   // syscall, socket, capability, file, exec, network
	syscall    string   // the syscall's name (kind syscall, or the call of a file operation)
	path       string   // file path or program (kind file, exec)
	access     []string // access kinds not granted (kind file)
	family     string   // socket family (kind socket)
	capability string   // CAP_... (kind capability)
	inbound    bool     // an accepted connection (kind network)
}

// shells are the command interpreters whose start is the "shell spawned" signal.
var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "ash", "busybox"}

// sensitiveFiles are credentials and secrets (Falco's sensitive_file_names and
// ssh keys); a read of one is a credential-access step.
var sensitiveFiles = []string{"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers",
	"/etc/pam.conf", "/etc/security/opasswd", "/etc/master.passwd"}

// sensitiveDirs are directories whose every file is a secret or an authentication policy.
var sensitiveDirs = []string{"/etc/sudoers.d/", "/etc/pam.d/", "/etc/ssh/", "/etc/ssl/private/", "/root/.ssh/",
	"/run/secrets/", "/var/lib/docker/"}

// dockerSockets give whoever connects to them root on the host.
var dockerSockets = []string{"/run/docker.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock"}

// systemDirs are binary, library and configuration trees (Falco's "write below binary
// dir", "write below etc", "write below root", "write below rpm/dpkg database"): a
// write there changes what every later program runs or how it is configured.
var systemDirs = []string{"/bin/", "/sbin/", "/usr/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/etc/", "/boot/",
	"/root/", "/var/lib/dpkg/", "/var/lib/rpm/", "/opt/"}

// privilegeCalls change the process's credentials or capabilities.
var privilegeCalls = []string{"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
	"setfsgid", "setgroups", "capset", "setuid32", "setgid32", "setreuid32", "setregid32", "setresuid32",
	"setresgid32", "setfsuid32", "setfsgid32", "setgroups32", "prctl"}

// namespaceCalls change the process's namespaces or mounts (container escape steps).
var namespaceCalls = []string{"unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen",
	"fsmount", "fsconfig", "move_mount", "open_tree", "mount_setattr"}

// injectCalls read or write another process's memory or control it.
var injectCalls = []string{"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp"}

// kernelCalls load code into the kernel, replace it, or reach its memory.
var kernelCalls = []string{"bpf", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
	"perf_event_open", "iopl", "ioperm", "create_module", "reboot", "swapon", "swapoff", "syslog", "quotactl"}

// namespaceCaps and kernelCaps: a capability check is classed by what the capability
// guards; any other one is a privilege change.
var kernelCaps = []string{"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_BPF", "CAP_PERFMON", "CAP_SYS_BOOT", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE"}
var injectCaps = []string{"CAP_SYS_PTRACE"}

// classify gives an anomaly its category and severity.
func classify(s subject) (category, severity string) {
	switch s.kind {
	case "exec":
		if isShell(s.path) {
			return CatShell, SeverityHigh
		}
		return CatExec, SeverityMedium
	case "file":
		writes := slices.ContainsFunc(s.access, isWriteKind)
		switch {
		case slices.Contains(s.access, profiles.AccessConnect) && slices.Contains(dockerSockets, s.path):
			return CatPrivilege, SeverityCritical
		case slices.Contains(s.access, profiles.AccessConnect):
			return CatOutbound, SeverityMedium
		case isSensitiveFile(s.path) && slices.Contains(s.access, profiles.AccessRead):
			return CatSensitiveRead, SeverityHigh
		case writes && isSensitiveFile(s.path):
			return CatSystemWrite, SeverityCritical
		case writes && under(s.path, systemDirs):
			return CatSystemWrite, SeverityHigh
		case slices.Contains(s.access, profiles.AccessExec):
			if isShell(s.path) {
				return CatShell, SeverityHigh
			}
			return CatExec, SeverityMedium
		case writes:
			return CatFile, SeverityMedium
		}
		return CatFile, SeverityLow
	case "network":
		if s.inbound {
			return CatInbound, SeverityMedium
		}
		return CatOutbound, SeverityMedium
	case "socket":
		switch s.family {
		case "AF_PACKET":
			return CatRawNetwork, SeverityHigh
		}
		return CatSocket, SeverityMedium
	case "capability":
		switch {
		case slices.Contains(kernelCaps, s.capability):
			return CatKernel, SeverityCritical
		case slices.Contains(injectCaps, s.capability):
			return CatProcessInject, SeverityHigh
		case s.capability == "CAP_SYS_ADMIN":
			return CatNamespace, SeverityHigh
		}
		return CatPrivilege, SeverityHigh
	case "syscall":
		switch {
		case slices.Contains(kernelCalls, s.syscall):
			return CatKernel, SeverityCritical
		case slices.Contains(namespaceCalls, s.syscall):
			return CatNamespace, SeverityHigh
		case slices.Contains(injectCalls, s.syscall):
			return CatProcessInject, SeverityHigh
		case slices.Contains(privilegeCalls, s.syscall):
			return CatPrivilege, SeverityHigh
		case strings.HasPrefix(s.syscall, "exec"):
			return CatExec, SeverityMedium
		}
		return CatSyscall, SeverityLow
	}
	return CatSyscall, SeverityLow
}

func isShell(p string) bool {
	return slices.Contains(shells, path.Base(strings.TrimSuffix(p, "/")))
}

func isWriteKind(k string) bool {
	switch k {
	case profiles.AccessRead, profiles.AccessExec, profiles.AccessList:
		return false
	}
	return true
}

func isSensitiveFile(p string) bool {
	return slices.Contains(sensitiveFiles, p) || under(p, sensitiveDirs) ||
		strings.Contains(p, "/.ssh/") || strings.Contains(p, "/.gnupg/") || strings.Contains(p, "/.aws/credentials")
}

// under reports whether p is one of dirs (written with a trailing slash) or beneath one.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d) || p == strings.TrimSuffix(d, "/") {
			return true
		}
	}
	return false
}
