package replica

import (
	"context"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// PrimaryDelegate is the first delegate of the newest document version:
// the namespace whose signed refs seq announcements carry (canonical_seq)
// and holders are compared by, the same on every node.
func PrimaryDelegate(doc *wire.RepoDoc) identity.NodeID { return doc.Delegates()[0] }

// canonical is the namespace mega://<repo> serves (spec/repo.md §2.3): the
// delegate whose default branch is the head a threshold of delegates
// agree on.
func (s *Service) canonical(ctx context.Context, bare *gitstore.Bare, doc *wire.RepoDoc) identity.NodeID {
	dels := doc.Delegates()
	if len(dels) == 1 {
		return dels[0]
	}
	tips := make([]string, len(dels))
	for i, d := range dels {
		tips[i] = branchTip(ctx, bare, Namespace(d), doc.DefaultBranch())
	}
	return dels[agreed(tips, doc.Threshold(), func(anc, desc string) bool {
		ok, err := bare.IsAncestor(ctx, anc, desc)
		return err == nil && ok
	})]
}

// agreed picks the delegate whose tip is the agreed head. A tip's votes
// are the delegates whose tips contain it (equal to it or descending from
// it); of the tips with at least threshold votes, the newest wins (one no
// other of them descends from), the first delegate in document order
// among equals. When no tip has enough votes, the first delegate with a
// tip. contains(a, b) reports whether b contains a; tips[i] is "" for a
// delegate without the branch.
func agreed(tips []string, threshold int, contains func(anc, desc string) bool) int {
	memo := map[[2]string]bool{}
	in := func(a, b string) bool {
		if a == b {
			return true
		}
		k := [2]string{a, b}
		v, ok := memo[k]
		if !ok {
			v = contains(a, b)
			memo[k] = v
		}
		return v
	}
	var qualified []int
	for i, t := range tips {
		votes := 0
		for _, u := range tips {
			if t != "" && u != "" && in(t, u) {
				votes++
			}
		}
		if t != "" && votes >= threshold {
			qualified = append(qualified, i)
		}
	}
	for _, i := range qualified {
		newest := true
		for _, j := range qualified {
			if tips[j] != tips[i] && in(tips[i], tips[j]) {
				newest = false
				break
			}
		}
		if newest {
			return i
		}
	}
	for i, t := range tips {
		if t != "" {
			return i
		}
	}
	return 0
}
