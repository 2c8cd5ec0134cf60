//go:build linux || darwin

package diskspace

import (
	"fmt"
	"syscall"
)

// Free returns the bytes available to an unprivileged writer on the
// filesystem holding path (statfs f_bavail, so a filesystem's root-only
// reserved blocks do not count) and the filesystem's size.
func Free(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, nil
}
