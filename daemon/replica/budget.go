package replica

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// Budgets bound what other nodes can make this one store (spec/repo.md
// §5.1). A repository replicated only because the policy is "all" was
// chosen by whoever announced it, not by the owner of this node: it gets a
// small budget, and all such repositories of one creator share another.
// Repositories the owner chose (repo seed, a clone, a push, repo add) get
// the protocol's MaxPackSize per fetch.
const (
	// DefaultReplicateMax is the default per-repository budget of a
	// repository replicated automatically: what its replica may hold on
	// disk (Config.ReplicateMax, med --replicate-max). Most repositories
	// are far smaller; a bigger one is replicated once chosen.
	DefaultReplicateMax = 256 << 20
	// DefaultOriginMax is the default per-origin budget: what all the
	// automatically replicated repositories of one creator may hold on
	// disk together (Config.OriginMax), so a stranger cannot fill the disk
	// with many repositories each under DefaultReplicateMax.
	DefaultOriginMax = 1 << 30
	// budgetBackoff is how long a holder whose fetch crossed a budget is
	// skipped, connected or not: it would only send the same again.
	budgetBackoff = 10 * time.Minute
)

// budget is what one fetch may receive, and why. Fetches of one origin's
// automatically replicated repositories run at once; what each has
// received so far is counted in the origin's in-flight total, so together
// they stay within what the origin's budget had left.
type budget struct {
	limit int64  // pack bytes; ≤ 0: nothing may come
	why   string // the budget that set the limit, for the error

	inflight   *atomic.Int64 // the origin's bytes being received now (nil: not counted)
	originLeft int64         // the origin's budget less what its replicas hold on disk
	originWhy  string
	taken      int64
}

// take counts n more bytes of this fetch, or says which budget they cross.
func (b *budget) take(n int64) error {
	if b.taken+n > b.limit {
		return errorf(ErrTooLarge, "over budget: the holder sent more than %d bytes, cut at %s", max(b.limit, 0), b.why)
	}
	b.taken += n
	if b.inflight != nil && b.inflight.Add(n) > b.originLeft {
		return errorf(ErrTooLarge, "over budget: fetches running at once crossed %s", b.originWhy)
	}
	return nil
}

// release ends the fetch's share of the origin's in-flight total: its
// bytes are on disk now (counted there) or gone.
func (b *budget) release() {
	if b.inflight != nil {
		b.inflight.Add(-b.taken)
		b.inflight = nil
	}
}

// originInflight is origin's in-flight counter.
func (s *Service) originInflight(origin identity.NodeID) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.inflight[origin]
	if c == nil {
		c = new(atomic.Int64)
		s.inflight[origin] = c
	}
	return c
}

// chosen reports whether the owner of this node chose repo (repo seed, a
// clone or a push, or a working repository shared from here), as opposed
// to replicating it because of the policy.
func (s *Service) chosen(repo identity.RepoID) bool {
	st := s.state(repo)
	return st.Path != "" || st.Seed == seedYes
}

// fetchBudget is the budget of one fetch of repo, whose document is doc:
// MaxPackSize for a chosen repository; else the least of the repository's
// and the origin's budgets, less what their replicas hold on disk already.
func (s *Service) fetchBudget(repo identity.RepoID, doc *wire.RepoDoc) budget {
	b := budget{limit: s.cfg.MaxPackSize, why: fmt.Sprintf("the pack budget of %s", mib(s.cfg.MaxPackSize))}
	if s.chosen(repo) {
		return b
	}
	if st := s.state(repo); st.Seed == seedRequested {
		return s.seedFetchBudget(st.Requester)
	}
	used := diskUsage(s.Dir(repo))
	if left := s.cfg.ReplicateMax - used; left < b.limit {
		b = budget{limit: left, why: fmt.Sprintf("the budget of %s of a repository replicated automatically (replicate-max), of which its replica holds %s",
			mib(s.cfg.ReplicateMax), mib(used))}
	}
	origin := doc.Creator()
	byOrigin := s.originUsage(origin, repo, used)
	why := fmt.Sprintf("the budget of %s for the repositories of %s replicated automatically, of which they hold %s",
		mib(s.cfg.OriginMax), origin.Short(), mib(byOrigin))
	if left := s.cfg.OriginMax - byOrigin; left < b.limit {
		b = budget{limit: left, why: why}
	}
	b.inflight, b.originLeft, b.originWhy = s.originInflight(origin), s.cfg.OriginMax-byOrigin, why
	return b
}

// originUsage is what the automatically replicated repositories created
// by origin hold on disk; repo's own usage is given (it may have no
// document yet).
func (s *Service) originUsage(origin identity.NodeID, repo identity.RepoID, used int64) int64 {
	total := used
	for _, r := range s.heldOnDisk() {
		if r == repo || s.chosen(r) {
			continue
		}
		if doc, err := s.Doc(r); err == nil && doc.Creator() == origin {
			total += diskUsage(s.Dir(r))
		}
	}
	return total
}

// heldOnDisk lists the repositories with a replica directory.
func (s *Service) heldOnDisk() []identity.RepoID {
	entries, _ := os.ReadDir(filepath.Join(s.cfg.Root, "repos"))
	var out []identity.RepoID
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".git")
		if !ok || !e.IsDir() {
			continue
		}
		if repo, err := identity.ParseRepoID("did:repo:" + name); err == nil && s.Dir(repo) == filepath.Join(s.cfg.Root, "repos", e.Name()) {
			out = append(out, repo)
		}
	}
	return out
}

// diskUsage is the size of the files under a replica's objects directory
// (0 if there is none).
func diskUsage(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(filepath.Join(dir, "objects"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// backoff is a holder skipped until a time, whatever its connection.
type backoff struct {
	until time.Time
	err   error           // why: reported again while the holder is skipped
	repo  identity.RepoID // the repository whose fetch crossed the budget
}

// overBudget backs off holder h after its fetch of repo crossed a budget.
func (s *Service) overBudget(h identity.NodeID, repo identity.RepoID, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backoff[h] = backoff{time.Now().Add(budgetBackoff), err, repo}
}

// forgiveHolders ends the back-off of the holders whose fetch of repo
// crossed a budget: repo seed lifts the budgets they crossed.
func (s *Service) forgiveHolders(repo identity.RepoID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, b := range s.backoff {
		if b.repo == repo {
			delete(s.backoff, h)
		}
	}
}

// backedOff returns why h is backed off, or nil.
func (s *Service) backedOff(h identity.NodeID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.backoff[h]; ok && time.Now().Before(b.until) {
		return b.err
	}
	delete(s.backoff, h)
	return nil
}
