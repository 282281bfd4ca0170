package docker

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/tailor-sec/tailor/internal/dockertest"
)

func TestCleanupStale(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	origID := original(t, env, &container.Config{Image: img, Cmd: []string{"sleep", "600"}}, nil)

	// A tailor run that creates a copy and exits without removing it, as if killed.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self)
	child.Env = append(os.Environ(), childEnv+"=abandon-copy", "TAILOR_TEST_ORIGINAL="+origID)
	child.Stderr = os.Stderr
	out, err := child.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	stale := string(out)
	t.Cleanup(func() {
		_ = env.Client.ContainerRemove(context.Background(), stale, container.RemoveOptions{Force: true})
	})

	// This process's own copy is live.
	live, err := c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
	if err != nil {
		t.Fatalf("PrepareCopy: %v", err)
	}
	defer removed(t, env, live)
	if err := live.Start(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := c.CleanupStale(ctx)
	if err != nil {
		t.Fatalf("CleanupStale: %v", err)
	}
	if !slices.Equal(got, []string{stale}) {
		t.Fatalf("CleanupStale removed %q, want only the abandoned %q", got, stale)
	}
	if _, err := env.Client.ContainerInspect(ctx, stale); err == nil {
		t.Error("the abandoned copy still exists")
	}
	if info, err := env.Client.ContainerInspect(ctx, live.ID()); err != nil || !info.State.Running {
		t.Errorf("the live copy was touched: %v", err)
	}
	if info, err := env.Client.ContainerInspect(ctx, origID); err != nil || info.Config.Labels[LabelOwnerPid] != "" {
		t.Errorf("the original was touched: %v", err)
	}
	again, err := c.CleanupStale(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second CleanupStale = %q, %v; want nothing", again, err)
	}
}

func TestOwnerAlive(t *testing.T) {
	start, err := procStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pid, start string
		want       bool
	}{
		{itoa(os.Getpid()), start, true},
		{itoa(os.Getpid()), "", true},
		// Same pid, other start time: the pid was reused by another process.
		{itoa(os.Getpid()), start + "0", false},
		{"not-a-pid", start, false},
		{"0", "", false},
		// Above the kernel's pid_max limit (4194304), so never a process.
		{"4194305", "", false},
	} {
		if got := ownerAlive(tc.pid, tc.start); got != tc.want {
			t.Errorf("ownerAlive(%q, %q) = %v, want %v", tc.pid, tc.start, got, tc.want)
		}
	}
}
