package generate

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// Headroom of the hardened configuration over what the learning run used
// (docs/generate.md, "Hardened run configuration").
const (
	// tmpfsMin is the smallest tmpfs proposed; tmpfsFactor multiplies what was written.
	tmpfsMin    = 16 << 20
	tmpfsFactor = 4
	// memoryFactor multiplies the memory peak (plus the tmpfs sizes, whose pages the
	// memory cgroup charges); memoryMin is the smallest limit proposed.
	memoryFactor = 2
	memoryMin    = 64 << 20
	// pidsFactor multiplies the task peak; pidsMin is the smallest limit.
	pidsFactor = 2
	pidsMin    = 32
	// cpuFactor multiplies the average CPU use over the run, which cannot show
	// bursts; cpuMinNano is the smallest limit (one CPU).
	cpuFactor  = 4
	cpuMinNano = 1_000_000_000
	// nobody is the user proposed for a target that needed no root.
	nobody = "65534:65534"
)

// persistentDirs hold data that should outlive the container: written there, they
// get a volume suggestion instead of a tmpfs.
var persistentDirs = []string{"/data", "/home", "/var/lib"}

// hardening derives the hardened run configuration of a container from the merged
// recording, or returns nil and why not.
func hardening(rec *profiles.Recording, caps []string) (*profiles.Hardening, string) {
	if rec.Target.Kind != "container" {
		return nil, "not a container"
	}
	o := rec.Observed
	if o == nil {
		return nil, "the recording has no observed section (learned by an older tailor): re-learn"
	}
	h := &profiles.Hardening{Facts: []profiles.HardenFact{}}
	fact := func(part string, flags []string, format string, args ...any) {
		h.Facts = append(h.Facts, profiles.HardenFact{Part: part, Flags: flags, Fact: fmt.Sprintf(format, args...)})
	}
	tmpfsBytes := hardenReadOnly(rec, h, fact)
	hardenUser(o, caps, h, fact)
	hardenLimits(rec, tmpfsBytes, h, fact)
	h.NoNewPrivileges = true
	fact(profiles.HardenNoNewPrivileges, []string{"--security-opt", "no-new-privileges"},
		"always: no setuid program or file capability can raise the target's privileges (capabilities it needs come from --cap-add)")
	hardenNetwork(rec, h, fact)
	return h, ""
}

// hardenReadOnly makes the root read-only and gives each directory written on it a
// tmpfs or a volume. It returns the bytes of tmpfs proposed.
func hardenReadOnly(rec *profiles.Recording, h *profiles.Hardening, fact func(string, []string, string, ...any)) int64 {
	h.ReadOnly = true
	var onRoot []profiles.WrittenDir
	var elsewhere []string
	for _, d := range rec.Observed.WrittenDirs {
		if d.Mount == profiles.MountRootfs || d.Mount == "" {
			onRoot = append(onRoot, d)
		} else {
			elsewhere = append(elsewhere, fmt.Sprintf("%s (%s %s)", d.Path, d.Mount, d.MountPoint))
		}
	}
	fact(profiles.HardenReadOnly, []string{"--read-only"}, "the target wrote on its root filesystem only in %s; elsewhere on mounts of its own: %s",
		listOrNone(dirPaths(onRoot)), listOrNone(elsewhere))
	// Parents first (the list is sorted): a directory below a tmpfs is covered by it;
	// one below a volume gets its own decision, so that a volume taken for image
	// content does not also swallow the scratch directories beneath it.
	var total int64
	var tmpfs []*profiles.WrittenDir
	for i := range onRoot {
		d := onRoot[i]
		if j := slices.IndexFunc(tmpfs, func(t *profiles.WrittenDir) bool { return profiles.Under(d.Path, t.Path) }); j >= 0 {
			tmpfs[j].Bytes += d.Bytes
			tmpfs[j].Files += d.Files
			continue
		}
		if read := imageContentRead(rec.Files, d.Path); read != "" {
			h.Volumes = append(h.Volumes, profiles.HardenVolume{Path: d.Path, Reason: "holds image content the target read (" + read + "): a tmpfs would hide it, a new volume starts with a copy"})
			fact(profiles.HardenReadOnly, []string{"--mount", "type=volume,dst=" + d.Path}, "%s: the target wrote %d file(s) there and read %s from the image, which a tmpfs would hide", d.Path, d.Files, read)
			continue
		}
		if profiles.UnderAny(d.Path, persistentDirs) {
			h.Volumes = append(h.Volumes, profiles.HardenVolume{Path: d.Path, Reason: "data that must persist"})
			fact(profiles.HardenReadOnly, []string{"--mount", "type=volume,dst=" + d.Path}, "%s: the target wrote %d file(s) (%d bytes) there, data that must persist (use a named volume: -v NAME:%s)", d.Path, d.Files, d.Bytes, d.Path)
			continue
		}
		tmpfs = append(tmpfs, &d)
	}
	for _, d := range tmpfs {
		size := roundMiB(max(int64(d.Bytes)*tmpfsFactor, tmpfsMin))
		total += size
		h.Tmpfs = append(h.Tmpfs, profiles.HardenTmpfs{Path: d.Path, Size: size})
		fact(profiles.HardenReadOnly, []string{"--tmpfs", fmt.Sprintf("%s:rw,size=%dm", d.Path, size>>20)},
			"%s: the target wrote %d file(s), %d bytes at the end (directories below it included); size %d x that, at least %d MiB", d.Path, d.Files, d.Bytes, tmpfsFactor, tmpfsMin>>20)
	}
	return total
}

// imageContentRead names a file below dir the target read but did not make: content
// the image brought, which a tmpfs mounted over dir would hide.
func imageContentRead(files []profiles.FileAccess, dir string) string {
	made := map[string]bool{}
	for _, f := range files {
		if slices.ContainsFunc(f.Access, func(a string) bool { return slices.Contains(createKinds, a) }) {
			made[f.Path] = true
		}
	}
	for _, f := range files {
		if f.Dir || made[f.Path] || f.Path == dir || !profiles.Under(f.Path, dir) || !slices.Contains(f.Access, profiles.AccessRead) {
			continue
		}
		return f.Path
	}
	return ""
}

func dirPaths(ds []profiles.WrittenDir) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Path)
	}
	return out
}

func roundMiB(n int64) int64 { return (n + 1<<20 - 1) &^ (1<<20 - 1) }

// hardenUser proposes a non-root user for a target that ran as root only because the
// image said nothing, and needed no capability.
func hardenUser(o *profiles.Observed, caps []string, h *profiles.Hardening, fact func(string, []string, string, ...any)) {
	u := o.User
	switch {
	case u == nil:
		fact(profiles.HardenUser, nil, "not proposed: the user the target ran as was not observed")
	case u.UID != 0:
		fact(profiles.HardenUser, nil, "not needed: the target already ran as uid %d, gid %d", u.UID, u.GID)
	case u.Configured != "":
		fact(profiles.HardenUser, nil, "not proposed: the container was configured to run as %q", u.Configured)
	case len(caps) > 0:
		fact(profiles.HardenUser, nil, "not proposed: the target ran as root and needed %s", strings.Join(caps, ", "))
	default:
		h.User = nobody
		fact(profiles.HardenUser, []string{"--user", nobody}, "the target ran as root only by default (no user configured) and needed no capability; enforce --container verifies it still works")
	}
}

// hardenLimits sets memory, pids and CPU limits from the observed peaks.
func hardenLimits(rec *profiles.Recording, tmpfsBytes int64, h *profiles.Hardening, fact func(string, []string, string, ...any)) {
	r := rec.Observed.Resources
	if r == nil || r.Samples == 0 {
		fact(profiles.HardenLimits, nil, "not proposed: the cgroup's peaks were not observed")
		return
	}
	if r.MemoryPeak > 0 {
		h.Memory = roundMiB(max(int64(r.MemoryPeak)*memoryFactor+tmpfsBytes, memoryMin))
		fact(profiles.HardenLimits, []string{"--memory", fmt.Sprintf("%dm", h.Memory>>20)},
			"memory peaked at %d KiB (cgroup %s); limit %d x that plus the tmpfs sizes (%d MiB), at least %d MiB", r.MemoryPeak>>10, r.Cgroup, memoryFactor, tmpfsBytes>>20, memoryMin>>20)
	}
	if r.TasksPeak > 0 {
		h.PidsLimit = max(int64(r.TasksPeak)*pidsFactor, pidsMin)
		how := "peak counter"
		if r.TasksSampled {
			how = fmt.Sprintf("sampled every %s, cgroup v1 keeps no peak", r.SampleInterval)
		}
		fact(profiles.HardenLimits, []string{"--pids-limit", strconv.FormatInt(h.PidsLimit, 10)},
			"tasks peaked at %d (%s); limit %d x that, at least %d", r.TasksPeak, how, pidsFactor, pidsMin)
	}
	if d := rec.End.Sub(rec.Start); d > 0 && r.CPUNanos > 0 {
		avg := float64(r.CPUNanos) / float64(d.Nanoseconds())
		nano := max(int64(avg*cpuFactor*10+0.999999)*100_000_000, cpuMinNano)
		capped, lowered := profiles.CapNanoCPUs(nano, rec.Host.CPUs)
		h.NanoCPUs = capped
		how := fmt.Sprintf("%.3f CPU-seconds over %.1fs (%.2f CPUs on average); limit %d x that, at least 1 CPU (an average hides bursts)", float64(r.CPUNanos)/1e9, d.Seconds(), avg, cpuFactor)
		switch {
		case lowered:
			how += fmt.Sprintf(", capped at the learning host's %d CPUs (%.1f asked for: Docker refuses more CPUs than its host has; enforce caps again at its own host's)", rec.Host.CPUs, float64(nano)/1e9)
		case rec.Host.CPUs == 0 && nano > cpuMinNano:
			how += " (the learning host's CPU count is not in the recording, learned by an older tailor: not capped to it; Docker refuses more CPUs than its host has)"
		}
		fact(profiles.HardenLimits, []string{"--cpus", strconv.FormatFloat(float64(capped)/1e9, 'f', 1, 64)}, "%s", how)
	}
}

// hardenNetwork publishes the container's ports on the loopback only, or takes the
// network away from a target that used no network socket.
func hardenNetwork(rec *profiles.Recording, h *profiles.Hardening, fact func(string, []string, string, ...any)) {
	var inet []string
	for _, s := range rec.Network.Sockets {
		if s.Family != "AF_UNIX" {
			inet = append(inet, s.Family)
		}
	}
	slices.Sort(inet)
	inet = slices.Compact(inet)
	bindings := portBindings(rec.Target.Container)
	if len(inet) == 0 {
		h.NetworkNone = true
		fact(profiles.HardenNetwork, []string{"--network", "none"}, "the target created no network socket (AF_UNIX aside)")
	} else {
		fact(profiles.HardenNetwork, nil, "network kept: the target used %s", strings.Join(inet, ", "))
	}
	var listens []string
	for _, p := range ports(rec.Network.Listens) {
		listens = append(listens, fmt.Sprintf("%s %d", p.Family, p.Port))
	}
	if len(bindings) == 0 {
		fact(profiles.HardenPorts, nil, "no port was published; the target listened on %s", listOrNone(listens))
		return
	}
	for _, b := range bindings {
		h.Ports = append(h.Ports, b)
		fact(profiles.HardenPorts, []string{"-p", fmt.Sprintf("127.0.0.1:%s:%s", b.HostPort, b.ContainerPort)},
			"container port %s was published; the target listened on %s: published on the loopback only (give another address if it must be reached from outside)", b.ContainerPort, listOrNone(listens))
	}
}

// portBindings reads the original container's published ports, each moved to
// 127.0.0.1, sorted.
func portBindings(c *profiles.Container) []profiles.HardenPort {
	if c == nil {
		return nil
	}
	hc, _ := c.Config["HostConfig"].(map[string]any)
	raw, err := json.Marshal(hc["PortBindings"])
	if err != nil {
		return nil
	}
	var pb map[string][]struct{ HostIp, HostPort string }
	if json.Unmarshal(raw, &pb) != nil {
		return nil
	}
	var out []profiles.HardenPort
	for port, list := range pb {
		for _, b := range list {
			host := b.HostPort
			if host == "" {
				host = strings.Split(port, "/")[0]
			}
			out = append(out, profiles.HardenPort{HostIP: "127.0.0.1", HostPort: host, ContainerPort: port})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ContainerPort != out[j].ContainerPort {
			return out[i].ContainerPort < out[j].ContainerPort
		}
		return out[i].HostPort < out[j].HostPort
	})
	return slices.Compact(out)
}

// renderHardenedRun writes hardened-run.txt: each part's flags under the fact behind
// them, then every flag on one line to paste.
func renderHardenedRun(h *profiles.Hardening) string {
	var b strings.Builder
	b.WriteString("# Hardened run configuration, learned by tailor: each flag under the fact behind it.\n")
	b.WriteString("# Use it with the profile flags of docker-run.txt; tailor enforce --container applies both.\n")
	var all []string
	for _, f := range h.Facts {
		if len(f.Flags) == 0 {
			fmt.Fprintf(&b, "# [%s] %s\n", f.Part, f.Fact)
			continue
		}
		fmt.Fprintf(&b, "# [%s] %s\n#   %s\n", f.Part, f.Fact, shellJoin(f.Flags))
		all = append(all, f.Flags...)
	}
	b.WriteString(shellJoin(all) + "\n")
	return b.String()
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
