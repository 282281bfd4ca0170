package generate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/profiles"
)

// hardRec is a container recording with an observed section: it ran as root by
// default, wrote /run (empty in the image) and /etc/app (whose image content it read).
func hardRec() *profiles.Recording {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return &profiles.Recording{
		Target: profiles.Target{Kind: "container", Container: &profiles.Container{Config: map[string]any{"Config": map[string]any{}, "HostConfig": map[string]any{}}}},
		Start:  start, End: start.Add(10 * time.Second),
		Files: []profiles.FileAccess{
			{Path: "/run/app.pid", Access: []string{profiles.AccessCreate, profiles.AccessWrite}},
			{Path: "/etc/app/app.conf", Access: []string{profiles.AccessRead}},
			{Path: "/etc/app/state", Access: []string{profiles.AccessCreate, profiles.AccessWrite}},
		},
		Network: profiles.Network{Sockets: []profiles.Socket{{Family: "AF_UNIX", Type: "SOCK_STREAM"}}},
		Observed: &profiles.Observed{
			WrittenDirs: []profiles.WrittenDir{{Path: "/etc/app", Mount: profiles.MountRootfs, Files: 1}, {Path: "/run", Mount: profiles.MountRootfs, Files: 1, Bytes: 6}},
			User:        &profiles.RunUser{},
			Resources:   &profiles.Resources{Cgroup: "v2", MemoryPeak: 100 << 20, TasksPeak: 40, CPUNanos: 20e9, Samples: 3},
		},
	}
}

// TestHardening: each part follows its fact: a tmpfs where the image had nothing, a
// volume where the target read image content, nobody for root by default without
// capabilities, --network none without a network socket, limits with the headroom.
func TestHardening(t *testing.T) {
	h, why := hardening(hardRec(), nil)
	if h == nil {
		t.Fatal(why)
	}
	if !h.ReadOnly || !h.NoNewPrivileges || !h.NetworkNone || h.User != "65534:65534" {
		t.Errorf("hardening %+v", h)
	}
	if len(h.Tmpfs) != 1 || h.Tmpfs[0] != (profiles.HardenTmpfs{Path: "/run", Size: 16 << 20}) {
		t.Errorf("tmpfs %+v", h.Tmpfs)
	}
	if len(h.Volumes) != 1 || h.Volumes[0].Path != "/etc/app" {
		t.Errorf("volumes %+v", h.Volumes)
	}
	// 2 x 100 MiB + 16 MiB of tmpfs; 2 x 40 tasks; 4 x 2 CPUs on average.
	if h.Memory != 216<<20 || h.PidsLimit != 80 || h.NanoCPUs != 8e9 {
		t.Errorf("limits memory %d pids %d cpus %d", h.Memory, h.PidsLimit, h.NanoCPUs)
	}
	// A capability needed, or a user configured, keeps the user; an AF_INET socket
	// keeps the network.
	rec := hardRec()
	if h, _ := hardening(rec, []string{"CAP_CHOWN"}); h.User != "" {
		t.Errorf("user %q proposed for a target that needed CAP_CHOWN", h.User)
	}
	rec.Observed.User.Configured = "0"
	rec.Network.Sockets = append(rec.Network.Sockets, profiles.Socket{Family: "AF_INET", Type: "SOCK_STREAM"})
	h, _ = hardening(rec, nil)
	if h.User != "" || h.NetworkNone {
		t.Errorf("user %q, network none %v", h.User, h.NetworkNone)
	}
	for _, f := range h.Facts {
		if !slices.Contains(profiles.HardenParts, f.Part) || f.Fact == "" {
			t.Errorf("fact %+v", f)
		}
	}
	// A local command, or a recording without an observed section, gets none.
	rec.Observed = nil
	if h, why := hardening(rec, nil); h != nil || why == "" {
		t.Errorf("hardening without an observed section: %+v %q", h, why)
	}
}

// TestHardeningCapsCPUsAtTheLearningHost: 8 CPUs asked for (4 x the 2 averaged), on a
// learning host of 2: the limit, its flag and the compose and pod outputs that read it
// are 2, and the fact says why; a recording without the host's count says it is not
// capped.
func TestHardeningCapsCPUsAtTheLearningHost(t *testing.T) {
	rec := hardRec()
	rec.Host.CPUs = 2
	h, why := hardening(rec, nil)
	if h == nil {
		t.Fatal(why)
	}
	if h.NanoCPUs != 2e9 {
		t.Errorf("NanoCPUs %d, want 2e9 (the learning host's 2 CPUs)", h.NanoCPUs)
	}
	cpuFact := func(h *profiles.Hardening) profiles.HardenFact {
		for _, f := range h.Facts {
			if slices.Contains(f.Flags, "--cpus") {
				return f
			}
		}
		t.Fatalf("no --cpus fact: %+v", h.Facts)
		return profiles.HardenFact{}
	}
	f := cpuFact(h)
	if !slices.Equal(f.Flags, []string{"--cpus", "2.0"}) || !strings.Contains(f.Fact, "capped at the learning host's 2 CPUs (8.0 asked for") {
		t.Errorf("fact %+v", f)
	}
	rec.Host.CPUs = 16
	if h, _ := hardening(rec, nil); h.NanoCPUs != 8e9 || strings.Contains(cpuFact(h).Fact, "capped") {
		t.Errorf("a host with 16 CPUs: %d, %q", h.NanoCPUs, cpuFact(h).Fact)
	}
	rec.Host.CPUs = 0
	if h, _ := hardening(rec, nil); h.NanoCPUs != 8e9 || !strings.Contains(cpuFact(h).Fact, "not in the recording") {
		t.Errorf("no host count: %d, %q", h.NanoCPUs, cpuFact(h).Fact)
	}
}
