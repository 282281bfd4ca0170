package profiles

// BundleHardenedRunFile holds the hardened docker run flags, each with the learned
// fact behind it.
const BundleHardenedRunFile = "hardened-run.txt"

// Hardening parts, as Hardening.Facts and enforce --no-harden name them.
const (
	HardenReadOnly        = "readonly" // --read-only, with the tmpfs and volumes it needs
	HardenUser            = "user"     // --user
	HardenLimits          = "limits"   // --memory, --pids-limit, --cpus
	HardenNoNewPrivileges = "no-new-privileges"
	HardenPorts           = "ports"   // published on 127.0.0.1 only
	HardenNetwork         = "network" // --network none
)

// HardenParts lists every part, in the order they are applied and reported.
var HardenParts = []string{HardenReadOnly, HardenUser, HardenLimits, HardenNoNewPrivileges, HardenPorts, HardenNetwork}

// Hardening is the run configuration generate derives from what a container was seen
// doing beyond its syscalls (Recording.Observed): what enforce --container applies by
// default, and what hardened-run.txt and the pod snippet say.
type Hardening struct {
	// ReadOnly makes the root filesystem read-only; Tmpfs and Volumes are the
	// directories written on it that then need a mount of their own.
	ReadOnly bool           `json:"readOnly,omitempty"`
	Tmpfs    []HardenTmpfs  `json:"tmpfs,omitempty"`
	Volumes  []HardenVolume `json:"volumes,omitempty"`
	// User is "UID:GID", set when the target ran as root by default and needed no
	// capability.
	User string `json:"user,omitempty"`
	// Memory (bytes), PidsLimit and NanoCPUs are the limits, from the observed peaks
	// with headroom (docs/generate.md).
	Memory    int64 `json:"memory,omitempty"`
	PidsLimit int64 `json:"pidsLimit,omitempty"`
	NanoCPUs  int64 `json:"nanoCpus,omitempty"`
	// NoNewPrivileges is always set.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// Ports are the published ports, each on HostIP (127.0.0.1).
	Ports []HardenPort `json:"ports,omitempty"`
	// NetworkNone is set when the target used no network socket (AF_UNIX aside).
	NetworkNone bool `json:"networkNone,omitempty"`
	// Facts pair each part with its flags and the learned fact behind them; a part
	// not proposed has no flags and says why.
	Facts []HardenFact `json:"facts"`
}

// CapNanoCPUs bounds a CPU limit (in billionths of a CPU, Docker's NanoCpus) by a
// host's CPU count, as Docker requires ("Range of CPUs is from 0.01 to 2.00, as there
// are only 2 CPUs available"): a short learned run can average more than a small host
// has, and the whole host is then the same limit. cpus <= 0 (not known) leaves it.
// capped says whether it was lowered.
func CapNanoCPUs(nano int64, cpus int) (capped int64, lowered bool) {
	if cpus <= 0 || nano <= int64(cpus)*1_000_000_000 {
		return nano, false
	}
	return int64(cpus) * 1_000_000_000, true
}

// HardenTmpfs is a tmpfs for a directory written on the root filesystem.
type HardenTmpfs struct {
	Path string `json:"path"`
	// Size is the tmpfs size limit in bytes.
	Size int64 `json:"size"`
}

// HardenVolume is a directory that needs a volume rather than a tmpfs: data that
// must persist, or a directory whose image content the target read (Docker copies
// it into a new volume; a tmpfs would hide it).
type HardenVolume struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// HardenPort is one published port.
type HardenPort struct {
	HostIP        string `json:"hostIp"`
	HostPort      string `json:"hostPort"`
	ContainerPort string `json:"containerPort"` // "80/tcp"
}

// HardenFact is one part of the hardened configuration and why.
type HardenFact struct {
	Part  string   `json:"part"`
	Flags []string `json:"flags,omitempty"`
	Fact  string   `json:"fact"`
}
