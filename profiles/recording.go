// Package profiles holds the types every step of tailor shares: the recording that
// learn writes and generate reads, and the profile bundle that generate writes and
// enforce reads. Data flows one way: tracer -> recording -> generator -> bundle -> enforcer.
package profiles

import (
	"time"
)

// RecordingKind is the value of Recording.Kind; it lets a reader tell a recording from
// a bundle manifest or any other JSON file before it looks at the schema version.
const RecordingKind = "tailor.recording"

// RecordingSchemaVersion is the version of the recording format this build writes and
// reads. A reader refuses any other version instead of guessing (docs/recording.md).
// Version 2 added the path operations (mkdir, delete, rename, link, symlink, setattr,
// mknod, unix socket bind/connect), failed attempts and network peers: a version 1
// recording lacks them, so a profile built from it would deny them without a word.
const RecordingSchemaVersion = 2

// Arch is a syscall table's name. Names follow the seccomp profile spelling (Docker,
// OCI), so a recording maps onto a profile's "architectures" list without translation.
type Arch = string

// The architectures tailor knows.
const (
	ArchX86_64  Arch = "SCMP_ARCH_X86_64"
	ArchX86          = "SCMP_ARCH_X86"
	ArchX32          = "SCMP_ARCH_X32"
	ArchAARCH64      = "SCMP_ARCH_AARCH64"
	ArchARM          = "SCMP_ARCH_ARM"
)

// Recording is everything a target was seen doing while tailor learned it. All lists
// are sorted and deduplicated so that the same observations always serialise to the
// same bytes.
type Recording struct {
	Kind          string `json:"kind"`
	SchemaVersion int    `json:"schemaVersion"`
	// Tailor is the version of tailor that made the recording.
	Tailor string `json:"tailor"`
	Target Target `json:"target"`
	Host   Host   `json:"host"`
	// Start and End bound the time the tracer watched the target.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Complete is false when the run was interrupted, lost observations, or started
	// watching after the target had already started (attach): a profile generated from
	// an incomplete recording may be missing something the target needs.
	Complete bool `json:"complete"`
	// Incomplete lists why Complete is false, one short reason each, sorted.
	Incomplete []string `json:"incomplete,omitempty"`
	Loss       Loss     `json:"loss"`
	// Missing names observation kinds this host could not record at all (for example
	// "capabilities" on a kernel with neither the cap_capable tracepoint nor kprobes).
	Missing []string `json:"missing,omitempty"`

	Syscalls []ArchSyscalls `json:"syscalls"`
	Execs    []Exec         `json:"execs"`
	Files    []FileAccess   `json:"files"`
	// Failed are file operations that failed while learning (an ENOENT probe of a
	// config path, an ENXIO open of /dev/tty): facts about the program, not needs. The
	// same attempt failing the same way under enforcement is no anomaly.
	Failed       []FailedAccess `json:"failed,omitempty"`
	Capabilities []Capability   `json:"capabilities"`
	Network      Network        `json:"network"`
	// Observed holds run-time facts beyond the syscall level (written directories and
	// the mounts they lie on, resource peaks, the user it ran as) that the hardened run
	// configuration is cut from. Optional: recordings made before it have none, and
	// generate then leaves out what it would have derived.
	Observed *Observed `json:"observed,omitempty"`
}

// Observed is what learn saw of the target's run beyond its syscalls.
type Observed struct {
	// WrittenDirs are the directories the target created or changed files in, sorted
	// by path (from Files: write, create, mkdir, delete, rename, link, symlink,
	// setattr, mknod, bind).
	WrittenDirs []WrittenDir `json:"writtenDirs,omitempty"`
	// Resources are the peaks of the target's cgroup (containers only).
	Resources *Resources `json:"resources,omitempty"`
	// User is who the target's first process ran as.
	User *RunUser `json:"user,omitempty"`
}

// Where a written directory lies, as WrittenDir.Mount says it.
const (
	MountRootfs = "rootfs" // the image's writable layer
	MountVolume = "volume" // a named or anonymous Docker volume
	MountBind   = "bind"   // a host directory bind-mounted in
	MountTmpfs  = "tmpfs"  // a tmpfs mount
)

// WrittenDir is one directory the target wrote in.
type WrittenDir struct {
	Path string `json:"path"`
	// Mount is MountRootfs, MountVolume, MountBind or MountTmpfs for a container (from
	// its Mounts as Docker reports them); empty for a local command.
	Mount string `json:"mount,omitempty"`
	// MountPoint is the destination of the mount Path lies on; empty on the rootfs.
	MountPoint string `json:"mountPoint,omitempty"`
	// Bytes is the size of the regular files written there, as they were when the
	// target stopped (0 when they were removed, or could not be read).
	Bytes uint64 `json:"bytes,omitempty"`
	// Files counts the files written there.
	Files int `json:"files,omitempty"`
}

// Resources are a cgroup's peaks over the learning run.
type Resources struct {
	// Cgroup is "v1" or "v2", the hierarchy the numbers were read from.
	Cgroup string `json:"cgroup"`
	// MemoryPeak is the most memory the cgroup used, in bytes (v2 memory.peak, v1
	// memory.max_usage_in_bytes); 0 when unreadable.
	MemoryPeak uint64 `json:"memoryPeak,omitempty"`
	// TasksPeak is the most tasks (threads) the cgroup held (v2 pids.peak). cgroup v1
	// keeps no peak: pids.current is sampled while the target runs and TasksSampled
	// says so (a short-lived burst between samples can be missed).
	TasksPeak    uint64 `json:"tasksPeak,omitempty"`
	TasksSampled bool   `json:"tasksSampled,omitempty"`
	// CPUNanos is the CPU time the cgroup used (v2 cpu.stat usage_usec, v1
	// cpuacct.usage), read at the last sample before the target stopped.
	CPUNanos uint64 `json:"cpuNanos,omitempty"`
	// Samples counts the readings taken; SampleInterval is the time between them.
	Samples        int           `json:"samples,omitempty"`
	SampleInterval time.Duration `json:"sampleInterval,omitempty"`
}

// RunUser is the credentials a process ran with.
type RunUser struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	// Configured is the user the container was configured with (Config.User), empty
	// when it ran as the image's default.
	Configured string `json:"configured,omitempty"`
}

// Target describes what was learned.
type Target struct {
	// Kind is "command" for a local process tree or "container" for a Docker container.
	Kind string `json:"kind"`
	// Command is the argv that was started (kind "command"), or the container's
	// entrypoint plus command (kind "container").
	Command   []string   `json:"command,omitempty"`
	Container *Container `json:"container,omitempty"`
	// Workload is the workload command that drove the target, if any.
	Workload string `json:"workload,omitempty"`
	// Cwd is the working directory a local command was learned in (kind "command"):
	// generate makes the rules beneath it relative to the working directory at
	// enforce time (@{cwd}).
	Cwd string `json:"cwd,omitempty"`
	// Home is the home directory ($HOME) a local command was learned with (kind
	// "command"): generate never widens reads to the tree beneath a working directory
	// that is the home or holds it.
	Home string `json:"home,omitempty"`
}

// Container identifies a learned container and the configuration it was run with.
type Container struct {
	Name           string   `json:"name,omitempty"`
	ID             string   `json:"id"`
	Image          string   `json:"image"`
	ImageID        string   `json:"imageId,omitempty"`
	ImageDigests   []string `json:"imageDigests,omitempty"`
	Runtime        string   `json:"runtime,omitempty"`
	RuntimeVersion string   `json:"runtimeVersion,omitempty"`
	// Attached is true when tailor attached to an already running container instead of
	// relaunching it, so the container's start-up was not seen.
	Attached bool `json:"attached,omitempty"`
	// MntNS is the inode number of the mount namespace the learned processes ran in
	// (the relaunched copy's, or the attached container's), read from its init while it
	// ran; 0 when it had already exited. It is provenance only: the kernel reuses these
	// numbers as soon as a namespace is gone, so tailor never keys anything on it.
	MntNS uint64 `json:"mntns,omitempty"`
	// Config is the original container configuration as Docker reported it.
	Config map[string]any `json:"config,omitempty"`
}

// Command is the command the container runs: entrypoint then cmd, as Docker reported
// them in Config.
func (c *Container) Command() []string {
	cfg, _ := c.Config["Config"].(map[string]any)
	var argv []string
	for _, key := range []string{"Entrypoint", "Cmd"} {
		list, _ := cfg[key].([]any)
		for _, a := range list {
			if s, ok := a.(string); ok {
				argv = append(argv, s)
			}
		}
	}
	return argv
}

// Host describes the machine the recording was made on.
type Host struct {
	Kernel string `json:"kernel"`
	// Machine is uname's machine field (x86_64, aarch64).
	Machine string `json:"machine"`
	// Probes names the kernel hooks the tracer used, for example "cap_capable:tp_btf".
	Probes []string `json:"probes,omitempty"`
	// CPUs is how many CPUs the learning host had (0: not recorded, by an older
	// tailor): the most a learned CPU limit can be there (CapNanoCPUs).
	CPUs int `json:"cpus,omitempty"`
}

// Loss counts observations the tracer could not keep. Any non-zero field makes the
// recording incomplete.
type Loss struct {
	// RingbufDrops counts events the kernel could not put in the ring buffer.
	RingbufDrops uint64 `json:"ringbufDrops"`
	// MapFull counts updates refused because a kernel map was full.
	MapFull uint64 `json:"mapFull"`
	// TooLong counts paths or strings cut short by the kernel-side limits.
	TooLong uint64 `json:"tooLong"`
	// Decode counts events user space could not decode.
	Decode uint64 `json:"decode"`
}

// Total is the sum of all loss counters.
func (l Loss) Total() uint64 { return l.RingbufDrops + l.MapFull + l.TooLong + l.Decode }

// ArchSyscalls is the set of syscalls made under one architecture's syscall table.
type ArchSyscalls struct {
	Arch string `json:"arch"`
	// Names are libseccomp's names for the syscall numbers seen, sorted.
	Names []string `json:"names"`
	// Unknown lists numbers libseccomp has no name for on this architecture (a kernel
	// newer than the library). They cannot be allowed by name, so they are kept apart.
	Unknown []int `json:"unknown,omitempty"`
}

// Exec is one program a process of the target executed.
type Exec struct {
	// Path is the executed file as the process sees it (relative to its root).
	Path string `json:"path"`
	// Interpreter is the file the kernel actually ran when Path is a script.
	Interpreter string `json:"interpreter,omitempty"`
	// By is the command name of the process that called execve.
	By string `json:"by"`
	// DockerExec is true for processes started with docker exec.
	DockerExec bool `json:"dockerExec,omitempty"`
}

// File access kinds, as they appear in FileAccess.Access. Path operations name the
// path they act on: for a rename both the old (rename-from) and the new name
// (rename-to), for a hard link the existing file (link-from) and the new name
// (link-to).
const (
	AccessRead     = "read"
	AccessWrite    = "write"
	AccessCreate   = "create" // a regular file created (open O_CREAT, creat, mknod S_IFREG)
	AccessExec     = "exec"
	AccessMmapExec = "mmap-exec"
	AccessList     = "list"
	AccessMkdir    = "mkdir"  // a directory created
	AccessRmdir    = "rmdir"  // a directory removed
	AccessDelete   = "delete" // a non-directory removed (unlink)
	// AccessRenameFrom and AccessRenameTo are the two names of a rename; rename-to
	// replaces an existing file of that name, if any.
	AccessRenameFrom = "rename-from"
	AccessRenameTo   = "rename-to"
	AccessLinkFrom   = "link-from" // an existing file given a new hard link
	AccessLinkTo     = "link-to"   // the new name of a hard link
	AccessSymlink    = "symlink"   // a symbolic link created at this path
	// AccessSetattr changes metadata by path: chmod, chown, utimes, truncate.
	AccessSetattr = "setattr"
	AccessMknod   = "mknod" // a FIFO, socket or device node created
	// AccessBind and AccessConnect are a unix socket bound to, or connected to, by path.
	AccessBind    = "bind"
	AccessConnect = "connect"
)

// AccessKinds lists every file access kind, sorted: readers refuse others.
var AccessKinds = []string{
	AccessBind, AccessConnect, AccessCreate, AccessDelete, AccessExec, AccessLinkFrom,
	AccessLinkTo, AccessList, AccessMkdir, AccessMmapExec, AccessMknod, AccessRead,
	AccessRenameFrom, AccessRenameTo, AccessRmdir, AccessSetattr, AccessSymlink, AccessWrite,
}

// FileAccess is one path the target opened and the kinds of access it made.
type FileAccess struct {
	// Path is resolved from the opened file, relative to the process's own root, with
	// symlinks resolved. Directories end without a slash.
	Path string `json:"path"`
	// Access is the sorted set of access kinds (AccessRead ...).
	Access []string `json:"access"`
	// Dir is true when the path is a directory.
	Dir bool `json:"dir,omitempty"`
	// Collapsed, when non-zero, makes the entry stand for that many observations of
	// distinct files directly in Path (a directory), merged while learning because the
	// directory held too many of them to keep one entry each (learn.CollapseAt);
	// Access is the union of theirs. Generators give it one rule for Path's files.
	Collapsed uint64 `json:"collapsed,omitempty"`
}

// FailedAccess is a file operation that failed while learning: the path, the access
// kinds attempted, and the error the kernel returned.
type FailedAccess struct {
	// Path is the path the process asked for, made absolute against its working
	// directory (or directory fd) and cleaned; it may not exist.
	Path   string   `json:"path"`
	Access []string `json:"access"`
	// Errno is the error's name, for example "ENOENT".
	Errno string `json:"errno"`
	// Collapsed, when non-zero, makes the entry stand for that many failed attempts on
	// distinct files directly in Path (a directory) with this errno, merged while
	// learning like FileAccess.Collapsed.
	Collapsed uint64 `json:"collapsed,omitempty"`
}

// Capability is one Linux capability the target was checked for.
type Capability struct {
	// Name is the kernel's name, for example "CAP_CHOWN".
	Name string `json:"name"`
	// Granted and Denied count audited checks by result.
	Granted uint64 `json:"granted"`
	Denied  uint64 `json:"denied"`
	// Probed counts checks the kernel made without auditing (CAP_OPT_NOAUDIT, such as
	// the CAP_SYS_ADMIN probe on every mmap). They never make a capability needed.
	Probed uint64 `json:"probed"`
	// Runtime counts checks the container runtime made for itself after installing
	// the container's filter and before executing the entrypoint (setuid, capset...):
	// the runtime holds its own capabilities until then, so they are never a need.
	Runtime uint64 `json:"runtime,omitempty"`
	// Overridden counts checks made against credentials that are not the task's own:
	// overlayfs, for one, checks a container's lower layers with the credentials of
	// whoever mounted it. The answer does not depend on the target's capabilities,
	// so they are never a need either.
	Overridden uint64 `json:"overridden,omitempty"`
	// Callers are the kernel functions that made the audited checks, sorted.
	Callers []string `json:"callers,omitempty"`
}

// Needed reports whether the target needs the capability: an audited check granted it.
func (c Capability) Needed() bool { return c.Granted > 0 }

// Network is the target's socket use.
type Network struct {
	Sockets []Socket `json:"sockets"`
	Binds   []Port   `json:"binds"`
	Listens []Port   `json:"listens"`
	// Connects are the peers the target connected to (a non-blocking connect that
	// is still in progress counts), Sends the destinations of datagrams it sent with
	// an explicit address (sendto, sendmsg), Accepts the local ports of connections it
	// accepted. Failed holds the connects that failed, with their errno.
	Connects []Peer `json:"connects,omitempty"`
	Sends    []Peer `json:"sends,omitempty"`
	Accepts  []Port `json:"accepts,omitempty"`
	Failed   []Peer `json:"failedConnects,omitempty"`
}

// Peer is a socket address a target talked to.
type Peer struct {
	Family string `json:"family"`
	// Address is the IP address in its usual text form, or for AF_UNIX the socket's
	// path (resolved like file paths) or "@name" for an abstract socket.
	Address string `json:"address"`
	Port    uint16 `json:"port,omitempty"`
	// Errno names the error of a failed connect (Network.Failed only).
	Errno string `json:"errno,omitempty"`
}

// Socket is one (family, type, protocol) triple passed to socket(2).
type Socket struct {
	Family   string `json:"family"`
	Type     string `json:"type"`
	Protocol int    `json:"protocol"`
}

// Port is a local port bound or listened on.
type Port struct {
	Family string `json:"family"`
	Port   uint16 `json:"port"`
}
