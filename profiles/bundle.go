package profiles

// A profile bundle is a directory that generate writes and enforce reads:
//
//	bundle.json          the manifest below: what the profiles allow, in a form the
//	                     enforcer and diff read without parsing AppArmor syntax
//	seccomp.json         Docker/OCI seccomp profile
//	apparmor.profile     AppArmor profile
//	capabilities.json    {"drop": ["ALL"], "add": [...]}
//	docker-run.txt       flags to paste into docker run
//	seccompprofile.yaml  Security Profiles Operator SeccompProfile resource
//	pod-securitycontext.yaml  a pod spec fragment: the container securityContext (and hardening) to merge
//	SUMMARY.txt          short human summary
//	hardened-run.txt     hardened docker run flags and the facts behind them
//	                     (containers learned with an observed section only)
const (
	BundleManifestFile     = "bundle.json"
	BundleSeccompFile      = "seccomp.json"
	BundleAppArmorFile     = "apparmor.profile"
	BundleCapabilitiesFile = "capabilities.json"
	BundleDockerRunFile    = "docker-run.txt"
	BundleSPOFile          = "seccompprofile.yaml"
	BundlePodSnippetFile   = "pod-securitycontext.yaml"
	// BundleSPOAppArmorFile is the operator's AppArmorProfile (operator API v1 only).
	BundleSPOAppArmorFile = "apparmorprofile.yaml"
	// BundleProfileBindingFile binds the profiles to the learned image (only when
	// every recording was of one image).
	BundleProfileBindingFile = "profilebinding.yaml"
	BundleSummaryFile        = "SUMMARY.txt"
)

// BundleKind is the value of Bundle.Kind.
const BundleKind = "tailor.bundle"

// BundleSchemaVersion is the version of bundle.json this build writes and reads.
// Version 2 added the failed attempts, the network peers and the Landlock plan, and
// file rules with the path operation kinds of recording schema 2.
const BundleSchemaVersion = 2

// Bundle is the manifest of a profile bundle: the policy the profiles in the same
// directory express, in structured form.
type Bundle struct {
	Kind          string `json:"kind"`
	SchemaVersion int    `json:"schemaVersion"`
	Tailor        string `json:"tailor"`
	// Name is the profile name (AppArmor profile name, SeccompProfile name).
	Name string `json:"name"`
	// Machine is the uname machine the recordings were made on (x86_64, aarch64).
	Machine string `json:"machine"`
	// Sources describes the recordings the bundle was generated from.
	Sources []BundleSource `json:"sources"`
	// Syscalls are the syscalls seccomp.json allows, per architecture.
	Syscalls []ArchSyscalls `json:"syscalls"`
	// Execs are the programs the target may execute (AppArmor exec rules).
	Execs []string `json:"execs"`
	// Files are the generalised file rules of apparmor.profile.
	Files []FileRule `json:"files"`
	// Capabilities are the capabilities added back after dropping all, kernel names.
	Capabilities []string `json:"capabilities"`
	// SocketFamilies are the address families the target may create sockets in
	// (AF_INET, AF_UNIX...).
	SocketFamilies []string `json:"socketFamilies"`
	// Failed are the file operations that failed while learning, generalised like
	// Files: a repeat of one of them (same pattern, access and errno) under
	// enforcement is the program's own behaviour, not a denial by the profile.
	Failed []FailedRule `json:"failed"`
	// Network are the peers and ports the target used while learning.
	Network BundleNetwork `json:"network"`
	// Landlock is exactly what local enforcement grants with Landlock, computed by
	// generate from Files, Execs, Failed and Network; enforce applies it as written.
	Landlock LandlockPlan `json:"landlock"`
	// Generalised lists what the profiles allow beyond the recorded observations, and
	// the rule that added it (docs/generate.md); empty for generate --strict, apart
	// from the path rules every bundle has always generalised (pids, ids, content
	// directories).
	Generalised []Generalisation `json:"generalised"`
	// Digests holds the digest ("sha256:<hex>") of every other file of the bundle, by
	// file name, so a changed, truncated or missing file is found (VerifyBundleFile).
	Digests map[string]string `json:"digests,omitempty"`
	// Hardening is the hardened run configuration for a container, from the
	// recordings' observed section; absent for a local command or a recording
	// without one.
	Hardening *Hardening `json:"hardening,omitempty"`
}

// Generalisation kinds.
const (
	GeneralisedSyscall = "syscall"
	GeneralisedPath    = "path"
)

// Generalisation is one thing a bundle allows that no recording showed as such: a
// syscall of a recorded one's family or of the baseline, or a file pattern wider than
// the recorded paths it stands for.
type Generalisation struct {
	// Kind is GeneralisedSyscall or GeneralisedPath.
	Kind string `json:"kind"`
	// Added is the syscall name or the file pattern.
	Added string `json:"added"`
	// Access are the access kinds a path generalisation grants.
	Access []string `json:"access,omitempty"`
	// From are the recorded syscalls or paths that led to it, sorted; empty for what
	// every profile gets (the syscall baseline, the harmless pseudo-devices).
	From []string `json:"from,omitempty"`
	// Rule names the generalisation rule (a row of docs/generate.md's tables).
	Rule string `json:"rule"`
	// Reason says why the rule adds no new kind of access.
	Reason string `json:"reason"`
}

// BundleSource is one recording a bundle was generated from.
type BundleSource struct {
	File     string `json:"file"`
	Target   Target `json:"target"`
	Complete bool   `json:"complete"`
}

// FailedRule is a generalised failed file operation: the pattern of the path asked
// for, the access kinds attempted and the error the kernel returned.
type FailedRule struct {
	Pattern string   `json:"pattern"`
	Access  []string `json:"access"`
	Errno   string   `json:"errno"`
}

// BundleNetwork is the target's learned network use, each list sorted and unique.
// AF_UNIX paths are generalised like file paths; abstract names ("@name") and IP
// addresses are kept.
type BundleNetwork struct {
	Connects []Peer `json:"connects"`
	Sends    []Peer `json:"sends"`
	Binds    []Port `json:"binds"`
	Listens  []Port `json:"listens"`
	Accepts  []Port `json:"accepts"`
	// FailedConnects are connects that failed while learning, with their errno.
	FailedConnects []Peer `json:"failedConnects"`
}

// FileRule is one generalised file rule: an AppArmor glob and the access kinds it
// grants (AccessRead ...).
type FileRule struct {
	Pattern string   `json:"pattern"`
	Access  []string `json:"access"`
}
