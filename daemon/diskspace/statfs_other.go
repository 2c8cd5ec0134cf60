//go:build !linux && !darwin

package diskspace

import (
	"errors"
	"fmt"
)

// Free is not implemented on this system: it returns an error wrapping
// errors.ErrUnsupported, and a Guard then never reports low space.
func Free(path string) (free, total uint64, err error) {
	return 0, 0, fmt.Errorf("statfs %s: %w", path, errors.ErrUnsupported)
}
