package docker

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/tailor-sec/tailor/internal/fail"
)

// TestFilesOfExitedContainer: files of a container whose processes all exited are
// read through the daemon, symlinks (a directory one made at run time, busybox's
// relative applet links) resolved inside the container.
func TestFilesOfExitedContainer(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	id := original(t, env, &container.Config{Image: img, Cmd: []string{"/bin/sh", "-c", "ln -s /bin /tmp/b && echo data > /tmp/f"}}, nil)
	if err := env.Client.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	resc, errc := env.Client.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case r := <-resc:
		if r.StatusCode != 0 {
			t.Fatalf("container exited %d", r.StatusCode)
		}
	case err := <-errc:
		t.Fatal(err)
	}
	if got, err := c.ResolvePath(ctx, id, "/tmp/b/sh"); err != nil || got != "/bin/busybox" {
		t.Errorf("ResolvePath(/tmp/b/sh) = %q, %v; want /bin/busybox", got, err)
	}
	host, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]byte{"/tmp/b/sh": host, "/tmp/f": []byte("data\n")} {
		f, err := c.OpenFile(ctx, id, path)
		if err != nil {
			t.Errorf("OpenFile(%s): %v", path, err)
			continue
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("OpenFile(%s): %d bytes (%v), want %d bytes", path, len(got), err, len(want))
		}
	}
	for path, want := range map[string]string{"/tmp/nope": "/tmp/nope not found in container", "/tmp": "/tmp of container " + id[:12] + " is not a regular file"} {
		f, err := c.OpenFile(ctx, id, path)
		if err == nil {
			f.Close()
		}
		if fail.Code(err) != 6 || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenFile(%s): %v (exit %d), want exit 6 and %q", path, err, fail.Code(err), want)
		}
	}
}
