package compose

// overrideFile is a Compose override file: only the keys tailor sets.
type overrideFile struct {
	Services map[string]overrideService `json:"services"`
}

// overrideService is what an override sets on one service. Compose merges
// security_opt, cap_add, cap_drop and labels with the service's own (union), and
// replaces read_only and user.
type overrideService struct {
	SecurityOpt []string          `json:"security_opt,omitempty"`
	CapDrop     []string          `json:"cap_drop,omitempty"`
	CapAdd      []string          `json:"cap_add,omitempty"`
	ReadOnly    *bool             `json:"read_only,omitempty"`
	Tmpfs       []string          `json:"tmpfs,omitempty"`
	Volumes     []string          `json:"volumes,omitempty"`
	User        string            `json:"user,omitempty"`
	MemLimit    string            `json:"mem_limit,omitempty"`
	PidsLimit   *int64            `json:"pids_limit,omitempty"`
	CPUs        string            `json:"cpus,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}
