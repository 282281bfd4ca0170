package learn

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/tailor-sec/tailor/profiles"
)

// TestLearnContainerObserved: the recording of a container says where it wrote (its
// root filesystem, a volume, a tmpfs), how much it wrote on the root, who it ran as,
// and the peaks of its cgroup (a process forked to hold 3 tasks at once, memory and
// CPU used).
func TestLearnContainerObserved(t *testing.T) {
	env, img := dockerEnv(t)
	vol := "tailor-observed-" + t.Name()
	ctx := context.Background()
	t.Cleanup(func() { _ = env.Client.VolumeRemove(ctx, vol, true) })
	script := `mkdir -p /var/cache/app && head -c 5000 /dev/zero > /var/cache/app/blob && echo x > /data/x && echo y > /scratch/y &&
sleep 0.3 & sleep 0.3 & wait; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done`
	name := createContainer(t, env,
		&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}},
		&container.HostConfig{NetworkMode: "none",
			Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/data"}, {Type: mount.TypeTmpfs, Target: "/scratch"}}})
	rec, _, err := learnContainer(t, name, Options{}, ContainerOptions{})
	if err != nil {
		t.Fatalf("learn: %v", err)
	}
	o := rec.Observed
	if o == nil {
		t.Fatal("no observed section")
	}
	want := map[string]string{"/var/cache/app": profiles.MountRootfs, "/data": profiles.MountVolume, "/scratch": profiles.MountTmpfs}
	for _, d := range o.WrittenDirs {
		if kind, ok := want[d.Path]; ok {
			if d.Mount != kind {
				t.Errorf("%s on %q, want %q", d.Path, d.Mount, kind)
			}
			if d.Path == "/var/cache/app" && d.Bytes != 5000 {
				t.Errorf("%s holds %d bytes, want 5000", d.Path, d.Bytes)
			}
			delete(want, d.Path)
		}
	}
	if len(want) > 0 {
		t.Errorf("written directories %v missing from %+v", want, o.WrittenDirs)
	}
	if o.User == nil || o.User.UID != 0 || o.User.GID != 0 || o.User.Configured != "" {
		t.Errorf("user %+v, want root by default", o.User)
	}
	r := o.Resources
	if r == nil {
		t.Fatal("no resources")
	}
	if r.Cgroup != "v1" && r.Cgroup != "v2" || r.MemoryPeak == 0 || r.CPUNanos == 0 || r.Samples == 0 {
		t.Errorf("resources %+v", r)
	}
	// sh, and two sleeps at once: with v1 the count is sampled, so the sleeps last
	// three sample intervals.
	if r.TasksPeak < 3 {
		t.Errorf("tasks peak %d, want at least 3 (%+v)", r.TasksPeak, r)
	}
}
