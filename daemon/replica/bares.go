package replica

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
)

// A replica is checked to be a bare repository (and, for writing, given
// the replica configuration) once per run of the daemon, not on every
// fetch, serve and publication: each check is a git process, and an update
// runs several of them otherwise. Later uses only look that the directory
// still has its objects (a stat), so a replica deleted behind the daemon's
// back is opened, and checked, anew.

// openedBare is a replica checked in this run; configured: InitBare set
// its configuration.
type openedBare struct {
	b          *gitstore.Bare
	configured bool
}

// openBare returns repo's replica, checked once (gitstore.OpenBare).
func (s *Service) openBare(repo identity.RepoID) (*gitstore.Bare, error) {
	if o, ok := s.cachedBare(repo); ok {
		return o.b, nil
	}
	b, err := s.git.OpenBare(s.Dir(repo))
	if err != nil {
		return nil, err
	}
	s.keepBare(repo, openedBare{b: b})
	return b, nil
}

// initBare creates or opens repo's replica with the replica configuration
// (gitstore.InitBare), once per run.
func (s *Service) initBare(ctx context.Context, repo identity.RepoID) (*gitstore.Bare, error) {
	if o, ok := s.cachedBare(repo); ok && o.configured {
		return o.b, nil
	}
	b, err := s.git.InitBare(ctx, s.Dir(repo))
	if err != nil {
		return nil, err
	}
	s.keepBare(repo, openedBare{b: b, configured: true})
	return b, nil
}

func (s *Service) keepBare(repo identity.RepoID, o openedBare) {
	s.mu.Lock()
	s.bares[repo] = o
	s.mu.Unlock()
}

// cachedBare is repo's replica as checked in this run, if its objects
// directory is still there.
func (s *Service) cachedBare(repo identity.RepoID) (openedBare, bool) {
	s.mu.Lock()
	o, ok := s.bares[repo]
	s.mu.Unlock()
	if !ok {
		return o, false
	}
	if fi, err := os.Stat(filepath.Join(o.b.Dir, "objects")); err != nil || !fi.IsDir() {
		s.forgetBare(repo)
		return o, false
	}
	return o, true
}

// forgetBare drops what was cached of repo's replica (it is being
// deleted): the checked bare repository and its namespaces' HEADs.
func (s *Service) forgetBare(repo identity.RepoID) {
	s.mu.Lock()
	delete(s.bares, repo)
	for k := range s.heads {
		if strings.HasPrefix(k, s.Dir(repo)+"\x00") {
			delete(s.heads, k)
		}
	}
	s.mu.Unlock()
}
