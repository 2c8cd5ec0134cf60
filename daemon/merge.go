package daemon

import (
	"context"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Merge detection (DESIGN D7, spec/collab.md §8.2): whenever this node
// signs its own namespace anew — a push, the watcher of its working
// repository, a change it wrote — and it is a delegate, the collab service
// checks whether its default branch now contains a revision head of an
// open patch and, if so, records the merge. It runs apart from the
// publishing goroutine, which holds the replica's publish lock that
// writing the merge needs.

// mergeTimeout bounds one detection (a fold per patch and a git
// merge-base per revision).
const mergeTimeout = time.Minute

func (n *Node) ownPublished(repo identity.RepoID) {
	n.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mergeTimeout)
		defer cancel()
		if _, err := n.collab.DetectMerges(ctx, repo); err != nil {
			n.log.Debug("detecting merged patches failed", "repo", repo, "err", err)
		}
	})
}
