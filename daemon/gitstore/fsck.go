package gitstore

import (
	"context"
	"fmt"
)

// Fsck checks the connectivity and validity of every object in the
// repository (git fsck, dangling objects not reported). The error carries
// git's first complaints.
func (b *Bare) Fsck(ctx context.Context) error {
	if _, err := b.r.run(ctx, call{args: []string{"fsck", "--no-progress", "--no-dangling"}, gitDir: b.Dir}); err != nil {
		return fmt.Errorf("checking %s: %w", b.Dir, err)
	}
	return nil
}
