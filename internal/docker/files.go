package docker

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/tailor-sec/tailor/internal/fail"
)

// ResolvePath resolves every symlink in the absolute path p inside the root file
// system of container id, as the container's own processes would see it. It works on
// a running and on a stopped container (the daemon mounts the file system for the
// request), so tailor can read files of a container whose processes all exited.
func (c *Client) ResolvePath(ctx context.Context, id, p string) (string, error) {
	resolved := "/"
	for _, name := range strings.Split(path.Clean("/"+p), "/") {
		if name == "" {
			continue
		}
		next := path.Join(resolved, name)
		st, err := c.api.ContainerStatPath(ctx, id, next)
		if err != nil {
			return "", c.fileError(id, next, err)
		}
		// The daemon resolves a symlink's target completely, inside the container's
		// root, so the path so far stays free of symlinks.
		if st.Mode&os.ModeSymlink != 0 {
			next = st.LinkTarget
		}
		resolved = next
	}
	return resolved, nil
}

// OpenFile copies the regular file at p (symlinks resolved, see ResolvePath) out of
// container id, running or stopped, into an already unlinked temporary file, and
// returns that file positioned at its start. The caller closes it.
func (c *Client) OpenFile(ctx context.Context, id, p string) (*os.File, error) {
	resolved, err := c.ResolvePath(ctx, id, p)
	if err != nil {
		return nil, err
	}
	rc, _, err := c.api.CopyFromContainer(ctx, id, resolved)
	if err != nil {
		return nil, c.fileError(id, resolved, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s of container %s: %v", fail.ErrDocker, resolved, shortID(id), err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: %s of container %s is not a regular file", fail.ErrDocker, resolved, shortID(id))
	}
	f, err := os.CreateTemp("", "tailor-file-*")
	if err != nil {
		return nil, fmt.Errorf("copying %s out of container %s: %w", resolved, shortID(id), err)
	}
	// Unlinked at once: nothing is left behind whatever happens to tailor.
	_ = os.Remove(f.Name())
	if _, err := io.Copy(f, tr); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: copying %s out of container %s: %v", fail.ErrDocker, resolved, shortID(id), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("copying %s out of container %s: %w", resolved, shortID(id), err)
	}
	return f, nil
}

// fileError wraps a failed file request about path p in container id; unlike
// apiError it does not blame a missing container for a missing file.
func (c *Client) fileError(id, p string, err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %s not found in container %s", fail.ErrDocker, p, shortID(id))
	}
	return c.apiError(fmt.Sprintf("reading %s of container %s", p, shortID(id)), err)
}
