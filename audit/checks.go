package audit

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/tailor-sec/tailor/profiles"
)

// A check looks at one concern and returns its findings (none when it passes).
type check func(s Subject, rec *profiles.Recording) []Finding

// checks run in this order; Audit sorts what they find.
var checks = []check{
	checkPrivileged, checkNamespaces, checkMounts, checkDevices, checkSecretEnv, checkPorts,
	checkLinks, checkUser, checkLimits, checkReadOnly, checkSecurityOpts, checkCapabilities,
	checkRestart,
}

func checkPrivileged(s Subject, rec *profiles.Recording) []Finding {
	if !s.HostConfig.Privileged {
		return nil
	}
	ev := "HostConfig.Privileged is true: every capability, every device, no seccomp or AppArmor confinement"
	if rec != nil {
		ev += "; while learning the app needed " + neededCaps(rec)
	}
	return []Finding{{Check: "privileged", Severity: Critical, CIS: "5.5", Title: "privileged container",
		Evidence: ev, Fix: "remove --privileged; --cap-drop ALL plus --cap-add for each capability needed (tailor generate's capabilities.json)"}}
}

// neededCaps lists the capabilities a recording saw granted, or says there were none.
func neededCaps(rec *profiles.Recording) string {
	var names []string
	for _, c := range rec.Capabilities {
		if c.Needed() {
			names = append(names, c.Name)
		}
	}
	if len(names) == 0 {
		return "no capability"
	}
	return strings.Join(names, ", ")
}

func checkNamespaces(s Subject, _ *profiles.Recording) []Finding {
	hc := s.HostConfig
	var fs []Finding
	add := func(on bool, name, what, cis string, sev Severity, field, fix string) {
		if on {
			fs = append(fs, Finding{Check: name, Severity: sev, CIS: cis, Title: "shares the host's " + what + " namespace",
				Evidence: field + " is \"host\"", Fix: fix})
		}
	}
	add(hc.NetworkMode.IsHost(), "host-network", "network", "5.10", High, "HostConfig.NetworkMode",
		"remove --network host; use a user-defined network (or --network none when it needs no network)")
	add(hc.PidMode.IsHost(), "host-pid", "process", "5.16", High, "HostConfig.PidMode", "remove --pid host")
	add(hc.IpcMode.IsHost(), "host-ipc", "IPC", "5.17", Medium, "HostConfig.IpcMode", "remove --ipc host (--ipc private)")
	add(hc.UTSMode.IsHost(), "host-uts", "UTS", "5.21", Low, "HostConfig.UTSMode", "remove --uts host")
	add(hc.UsernsMode.IsHost(), "host-userns", "user", "5.31", Medium, "HostConfig.UsernsMode", "remove --userns host")
	return fs
}

// sensitiveDirs are the host directories CIS 5.6 names: mounting them, or anything
// below them, gives the container the host's configuration, binaries or kernel
// interfaces.
var sensitiveDirs = []string{"/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"}

// dockerSockets are the daemon sockets (Docker's and containerd's): whoever can
// connect to one controls the host, and a read-only mount does not stop a connect.
var dockerSockets = []string{"/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock"}

// hostMount is one mount of a host path (bind), from Binds or Mounts.
type hostMount struct {
	Source, Target, Propagation string
	ReadOnly                    bool
	Bind                        bool
}

// mounts lists the container's mounts from HostConfig.Binds ("src:dst[:opts]") and
// HostConfig.Mounts.
func mounts(s Subject) []hostMount {
	var out []hostMount
	for _, b := range s.HostConfig.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		m := hostMount{Source: parts[0], Target: parts[1], Bind: strings.HasPrefix(parts[0], "/")}
		if len(parts) > 2 {
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					m.ReadOnly = true
				case "shared", "rshared", "slave", "rslave", "private", "rprivate":
					m.Propagation = o
				}
			}
		}
		out = append(out, m)
	}
	for _, mt := range s.HostConfig.Mounts {
		m := hostMount{Source: mt.Source, Target: mt.Target, ReadOnly: mt.ReadOnly, Bind: mt.Type == mount.TypeBind}
		if mt.BindOptions != nil {
			m.Propagation = string(mt.BindOptions.Propagation)
		}
		out = append(out, m)
	}
	return out
}

func checkMounts(s Subject, _ *profiles.Recording) []Finding {
	var fs []Finding
	for _, m := range mounts(s) {
		mode, ro := "read-write", ""
		if m.ReadOnly {
			mode, ro = "read-only", ":ro"
		}
		ev := fmt.Sprintf("host %s mounted at %s %s", m.Source, m.Target, mode)
		switch {
		case !m.Bind:
		case slices.Contains(dockerSockets, path.Clean(m.Source)) || path.Base(m.Source) == "docker.sock":
			fs = append(fs, Finding{Check: "docker-socket", Severity: Critical, CIS: "5.32", Title: "the Docker socket is mounted",
				Evidence: ev + " (read-only does not stop a connect: the container controls the daemon, hence the host)",
				Fix:      "remove -v " + m.Source + ":" + m.Target + "; give the app a narrower API (a socket proxy allowing only what it calls)"})
		case path.Clean(m.Source) == "/":
			sev := Critical
			if m.ReadOnly {
				sev = High
			}
			fs = append(fs, Finding{Check: "sensitive-mount", Severity: sev, CIS: "5.6", Title: "the host's root directory is mounted",
				Evidence: ev, Fix: "remove -v /:" + m.Target + ro + "; mount only the directory the app needs"})
		case profiles.UnderAny(path.Clean(m.Source), sensitiveDirs):
			sev := High
			if m.ReadOnly {
				sev = Medium
			}
			fix := "remove -v " + m.Source + ":" + m.Target + ro
			if !m.ReadOnly {
				fix += " (or mount it :ro if the app only reads it)"
			}
			fs = append(fs, Finding{Check: "sensitive-mount", Severity: sev, CIS: "5.6", Title: "a sensitive host directory is mounted",
				Evidence: ev, Fix: fix})
		}
		if m.Propagation == "shared" || m.Propagation == "rshared" {
			fs = append(fs, Finding{Check: "mount-propagation", Severity: Medium, CIS: "5.20", Title: "a mount propagates to the host",
				Evidence: fmt.Sprintf("%s at %s has %s propagation", m.Source, m.Target, m.Propagation), Fix: "use private (the default) propagation for " + m.Target})
		}
	}
	return fs
}

func checkDevices(s Subject, _ *profiles.Recording) []Finding {
	var fs []Finding
	for _, d := range s.HostConfig.Devices {
		fs = append(fs, Finding{Check: "device", Severity: Medium, CIS: "5.18", Title: "a host device is exposed",
			Evidence: fmt.Sprintf("%s as %s (%s)", d.PathOnHost, d.PathInContainer, d.CgroupPermissions),
			Fix:      "remove --device " + d.PathOnHost + " unless the app needs it (then only the permissions it uses, e.g. :r)"})
	}
	return fs
}

// checkSecretEnv names the environment variables that look like secrets, by their
// name or their value's shape. Values are never put in a finding.
func checkSecretEnv(s Subject, _ *profiles.Recording) []Finding {
	var fs []Finding
	for _, e := range s.Config.Env {
		name, value, _ := strings.Cut(e, "=")
		why := ""
		switch {
		case value == profiles.Redacted:
			why = "its value was redacted when learned, as a secret"
		case !profiles.SecretValue(name, value):
			continue
		case profiles.SecretValue(name, "x"):
			why = "its name says it holds a secret"
		default:
			why = "its value is shaped like a secret (a key, a token, a PEM block or a URL with a password)"
		}
		fs = append(fs, Finding{Check: "secret-env", Severity: High, Title: "a secret in an environment variable",
			Evidence: fmt.Sprintf("%s is set (value not shown): %s; docker inspect and /proc/PID/environ show it to anyone who can read them", name, why),
			Fix:      "remove -e " + name + "; pass it as a file (docker secret, or --mount type=bind,src=FILE,dst=/run/secrets/" + strings.ToLower(name) + ",ro)"})
	}
	return fs
}

func checkPorts(s Subject, _ *profiles.Recording) []Finding {
	var fs []Finding
	ports := make([]string, 0, len(s.HostConfig.PortBindings))
	for p := range s.HostConfig.PortBindings {
		ports = append(ports, string(p))
	}
	sort.Strings(ports)
	for _, p := range ports {
		for _, b := range s.HostConfig.PortBindings[nat.Port(p)] {
			host := b.HostIP
			if host == "" {
				host = "0.0.0.0"
			}
			cport := strings.Split(p, "/")[0]
			if host == "0.0.0.0" || host == "::" {
				fs = append(fs, Finding{Check: "port-all-interfaces", Severity: Medium, CIS: "5.14", Title: "a port is published on every host interface",
					Evidence: fmt.Sprintf("container port %s published on %s:%s", p, host, b.HostPort),
					Fix:      fmt.Sprintf("-p 127.0.0.1:%s:%s (or the one address that must reach it)", b.HostPort, cport)})
			}
			if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 && n < 1024 {
				fs = append(fs, Finding{Check: "privileged-port", Severity: Low, CIS: "5.8", Title: "a privileged host port is mapped",
					Evidence: fmt.Sprintf("container port %s on host port %d", p, n), Fix: "map it to a host port above 1023"})
			}
		}
	}
	return fs
}

func checkLinks(s Subject, _ *profiles.Recording) []Finding {
	var fs []Finding
	for _, l := range s.HostConfig.Links {
		fs = append(fs, Finding{Check: "link", Severity: Low, Title: "legacy --link",
			Evidence: "linked to " + l + ": the link copies the other container's environment (secrets included) into this one",
			Fix:      "remove --link " + l + "; put both containers on a user-defined network"})
	}
	return fs
}

// rootUser reports whether a Config.User value runs as root.
func rootUser(u string) bool {
	name, _, _ := strings.Cut(u, ":")
	return name == "" || name == "root" || name == "0"
}

func checkUser(s Subject, rec *profiles.Recording) []Finding {
	if !rootUser(s.Config.User) {
		return nil
	}
	// A recording that saw the app run as another user outweighs an empty field.
	if rec != nil && rec.Observed != nil && rec.Observed.User != nil && rec.Observed.User.UID != 0 {
		return nil
	}
	ev := "Config.User is empty (the image's default, root)"
	if s.Config.User != "" {
		ev = fmt.Sprintf("Config.User is %q", s.Config.User)
	}
	fix := "--user UID:GID (a non-root user)"
	if rec != nil {
		if n := neededCaps(rec); n == "no capability" {
			ev += "; while learning the app ran as root without needing any capability"
			if o := rec.Observed; o != nil && o.User != nil && o.User.UID == 0 {
				fix = "--user 65534:65534 (or the app's own user): root was never needed"
			}
		} else {
			ev += "; while learning the app needed " + n
			fix = "--user UID:GID with --cap-add for " + n + " only, if the app can run so"
		}
	}
	return []Finding{{Check: "root-user", Severity: Medium, CIS: "4.1", Title: "runs as root", Evidence: ev, Fix: fix}}
}

func checkLimits(s Subject, rec *profiles.Recording) []Finding {
	hc := s.HostConfig
	var res *profiles.Resources
	if rec != nil && rec.Observed != nil {
		res = rec.Observed.Resources
	}
	var fs []Finding
	if hc.Memory <= 0 {
		fix := "--memory SIZE"
		if res != nil && res.MemoryPeak > 0 {
			fix = fmt.Sprintf("--memory SIZE (the learning run peaked at %d MiB; tailor generate proposes a limit)", res.MemoryPeak>>20)
		}
		fs = append(fs, Finding{Check: "no-memory-limit", Severity: Medium, CIS: "5.11", Title: "no memory limit",
			Evidence: "HostConfig.Memory is 0 (unlimited)", Fix: fix})
	}
	if hc.PidsLimit == nil || *hc.PidsLimit <= 0 {
		fix := "--pids-limit N"
		if res != nil && res.TasksPeak > 0 {
			fix = fmt.Sprintf("--pids-limit N (the learning run peaked at %d tasks)", res.TasksPeak)
		}
		fs = append(fs, Finding{Check: "no-pids-limit", Severity: Medium, CIS: "5.29", Title: "no pids limit (a fork bomb takes the host)",
			Evidence: "HostConfig.PidsLimit is unset", Fix: fix})
	}
	if hc.NanoCPUs == 0 && hc.CPUQuota == 0 && hc.CPUShares == 0 {
		fs = append(fs, Finding{Check: "no-cpu-limit", Severity: Low, CIS: "5.12", Title: "no CPU limit or priority",
			Evidence: "HostConfig.NanoCpus, CpuQuota and CpuShares are 0", Fix: "--cpus N (or --cpu-shares)"})
	}
	return fs
}

func checkReadOnly(s Subject, rec *profiles.Recording) []Finding {
	if s.HostConfig.ReadonlyRootfs {
		return nil
	}
	ev, fix := "HostConfig.ReadonlyRootfs is false", "--read-only with --tmpfs for each directory the app writes"
	if rec != nil && rec.Observed != nil {
		var rootfs []string
		for _, d := range rec.Observed.WrittenDirs {
			if d.Mount == profiles.MountRootfs {
				rootfs = append(rootfs, d.Path)
			}
		}
		switch {
		case len(rootfs) == 0:
			ev += "; while learning the app wrote nothing on its root filesystem"
			fix = "--read-only"
		case !slices.ContainsFunc(rootfs, func(d string) bool { return !profiles.Under(d, "/tmp") }):
			ev += "; while learning the app wrote on its root filesystem only under /tmp"
			fix = "--read-only --tmpfs /tmp"
		default:
			ev += "; while learning the app wrote on its root filesystem in " + strings.Join(rootfs, ", ")
			fix = "--read-only with the --tmpfs flags of tailor generate's hardened-run.txt"
		}
	}
	return []Finding{{Check: "writable-rootfs", Severity: Medium, CIS: "5.13", Title: "the root filesystem is writable", Evidence: ev, Fix: fix}}
}

// securityOpt finds a --security-opt KEY (key=value or the older key:value spelling).
func securityOpt(opts []string, key string) (string, bool) {
	for _, o := range opts {
		if o == key {
			return "", true
		}
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v, true
		}
		if v, ok := strings.CutPrefix(o, key+":"); ok {
			return v, true
		}
	}
	return "", false
}

func checkSecurityOpts(s Subject, _ *profiles.Recording) []Finding {
	opts := s.HostConfig.SecurityOpt
	var fs []Finding
	if v, ok := securityOpt(opts, "seccomp"); ok && v == "unconfined" {
		fs = append(fs, Finding{Check: "seccomp-unconfined", Severity: High, CIS: "5.22", Title: "seccomp is disabled",
			Evidence: "--security-opt seccomp=unconfined", Fix: "--security-opt seccomp=PROFILE (tailor generate's seccomp.json), or the default profile"})
	}
	if v, ok := securityOpt(opts, "apparmor"); (ok && v == "unconfined") || s.AppArmorProfile == "unconfined" {
		fs = append(fs, Finding{Check: "apparmor-unconfined", Severity: Medium, CIS: "5.2", Title: "AppArmor is disabled",
			Evidence: "apparmor=unconfined", Fix: "--security-opt apparmor=PROFILE (tailor generate's apparmor.profile), or docker-default"})
	}
	if v, ok := securityOpt(opts, "no-new-privileges"); !ok || v == "false" {
		fs = append(fs, Finding{Check: "no-new-privileges", Severity: Medium, CIS: "5.26", Title: "processes can gain privileges (setuid, file capabilities)",
			Evidence: "no --security-opt no-new-privileges", Fix: "--security-opt no-new-privileges"})
	}
	return fs
}

// dangerousCaps are the capabilities that each amount to, or easily become, root on
// the host.
var dangerousCaps = []string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_NET_ADMIN", "CAP_DAC_READ_SEARCH", "CAP_BPF", "CAP_SYS_BOOT", "CAP_MAC_ADMIN"}

func checkCapabilities(s Subject, rec *profiles.Recording) []Finding {
	var fs []Finding
	for _, c := range s.HostConfig.CapAdd {
		name := strings.ToUpper(c)
		if name != "ALL" && !strings.HasPrefix(name, "CAP_") {
			name = "CAP_" + name
		}
		sev := Medium
		if name == "ALL" || slices.Contains(dangerousCaps, name) {
			sev = High
		}
		ev := "--cap-add " + c
		fix := "remove --cap-add " + c
		if rec != nil && name != "ALL" {
			i := slices.IndexFunc(rec.Capabilities, func(k profiles.Capability) bool { return k.Name == name })
			if i < 0 || !rec.Capabilities[i].Needed() {
				ev += "; never used while learning"
			} else {
				ev += "; used while learning"
				fix = "keep it only with --cap-drop ALL (it was used)"
				sev = Low
			}
		}
		fs = append(fs, Finding{Check: "cap-add", Severity: sev, CIS: "5.4", Title: "an added capability", Evidence: ev, Fix: fix})
	}
	return fs
}

func checkRestart(s Subject, _ *profiles.Recording) []Finding {
	rp := s.HostConfig.RestartPolicy
	switch {
	case rp.Name == "always" || rp.Name == "unless-stopped":
		return []Finding{{Check: "restart-policy", Severity: Low, CIS: "5.15", Title: "unbounded restart policy",
			Evidence: "--restart " + string(rp.Name) + ": a crashing (or crashed on purpose) container restarts for ever", Fix: "--restart on-failure:5"}}
	case rp.Name == "on-failure" && (rp.MaximumRetryCount == 0 || rp.MaximumRetryCount > 5):
		return []Finding{{Check: "restart-policy", Severity: Low, CIS: "5.15", Title: "restart policy allows many retries",
			Evidence: fmt.Sprintf("--restart on-failure with %d retries (0 is unlimited)", rp.MaximumRetryCount), Fix: "--restart on-failure:5"}}
	}
	return nil
}
