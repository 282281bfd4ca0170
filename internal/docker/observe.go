package docker

import (
	"context"
	"path"
	"slices"

	"github.com/docker/docker/api/types/mount"

	"github.com/tailor-sec/tailor/profiles"
)

// maxStats bounds the stat requests WrittenSizes makes, so a target that wrote
// thousands of files does not keep learn talking to the daemon for minutes.
const maxStats = 512

// RuntimeFiles are the files Docker bind-mounts into every container itself; they
// do not appear among its Mounts, and a read-only root leaves them writable.
var RuntimeFiles = []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}

// ClassifyWritten fills in, for container id (which must still exist), where each
// written directory lies (the rootfs, a volume, a bind mount or a tmpfs, from the
// container's mounts) and, on the rootfs, how many bytes the written regular files
// among written hold now. A size that cannot be read counts 0.
func (c *Client) ClassifyWritten(ctx context.Context, id string, dirs []profiles.WrittenDir, written []string) error {
	info, err := c.inspect(ctx, id)
	if err != nil {
		return err
	}
	type mnt struct{ dst, kind string }
	var mounts []mnt
	for _, m := range info.Mounts {
		kind := profiles.MountBind
		switch m.Type {
		case mount.TypeVolume:
			kind = profiles.MountVolume
		case mount.TypeTmpfs:
			kind = profiles.MountTmpfs
		}
		mounts = append(mounts, mnt{path.Clean(m.Destination), kind})
	}
	for dst := range info.HostConfig.Tmpfs {
		mounts = append(mounts, mnt{path.Clean(dst), profiles.MountTmpfs})
	}
	for _, f := range RuntimeFiles {
		mounts = append(mounts, mnt{f, profiles.MountBind})
	}
	// The deepest mount holding a path is the one it lies on.
	slices.SortFunc(mounts, func(a, b mnt) int { return len(b.dst) - len(a.dst) })
	stats := 0
	for i := range dirs {
		d := &dirs[i]
		d.Mount, d.MountPoint = profiles.MountRootfs, ""
		for _, m := range mounts {
			if profiles.Under(d.Path, m.dst) {
				d.Mount, d.MountPoint = m.kind, m.dst
				break
			}
		}
		if d.Mount != profiles.MountRootfs {
			continue
		}
		for _, f := range written {
			if path.Dir(f) != d.Path || stats >= maxStats || slices.Contains(RuntimeFiles, f) {
				continue
			}
			stats++
			st, err := c.api.ContainerStatPath(ctx, id, f)
			if err == nil && st.Mode.IsRegular() && st.Size > 0 {
				d.Bytes += uint64(st.Size)
			}
		}
	}
	return nil
}
