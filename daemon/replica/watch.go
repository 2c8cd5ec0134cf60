package replica

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/megaengine/megaengine/protocol/identity"
)

// watchDebounce is how long the watcher waits after the last change in a
// working repository's refs before it publishes: a commit, a rebase or a
// fetch writes several files in a burst, and one publication covers them.
const watchDebounce = 25 * time.Millisecond

// watchRepo is one watched working repository.
type watchRepo struct {
	path   string          // the working repository, as shared
	gitDir string          // its git directory ("" until found)
	dirs   map[string]bool // directories with an fsnotify watch
}

// watcher publishes new commits, branches and tags of the working
// repositories shared from this node. Filesystem notifications on each
// repository's HEAD, packed-refs and refs/ (every directory under it) make
// it publish within watchDebounce of a change; a scan of every repository
// every Config.WatchInterval is the fallback for what notifications miss
// (network file systems, a watch limit reached, a repository that comes
// back). It runs in one goroutine: Serve's.
type watcher struct {
	s       *Service
	fs      *fsnotify.Watcher // nil: notifications are unavailable, scans only
	repos   map[identity.RepoID]*watchRepo
	byDir   map[string]identity.RepoID // watched directory → repository
	pending map[identity.RepoID]time.Time
}

// watch runs the watcher until ctx is done.
func (s *Service) watch(ctx context.Context) {
	w := &watcher{s: s, repos: map[identity.RepoID]*watchRepo{}, byDir: map[string]identity.RepoID{}, pending: map[identity.RepoID]time.Time{}}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw, err := fsnotify.NewWatcher(); err != nil {
		s.log.Warn("filesystem notifications unavailable; checking shared working repositories every interval", "interval", s.cfg.WatchInterval, "err", err)
	} else {
		w.fs = fw
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
	}
	scan := time.NewTicker(s.cfg.WatchInterval)
	defer scan.Stop()
	debounce := time.NewTimer(0) // the first flush checks every repository
	w.sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.watchChanged:
			if w.sync(ctx) {
				debounce.Reset(watchDebounce)
			}
		case ev := <-events:
			if w.event(ev) {
				debounce.Reset(watchDebounce)
			}
		case err := <-errs:
			s.log.Debug("filesystem notifications lost events", "err", err) // the scan covers what was lost
		case <-debounce.C:
			w.flush(ctx, debounce)
		case <-scan.C:
			w.sync(ctx)
			for repo, r := range w.repos {
				s.checkWork(ctx, repo, r.path)
			}
		}
	}
}

// watchChangedNotify tells the watcher that the set of shared working
// repositories changed.
func (s *Service) watchChangedNotify() {
	select {
	case s.watchChanged <- struct{}{}:
	default:
	}
}

// sync makes the watched set the shared working repositories now, adding
// watches for new ones (and for ones whose watches were lost), dropping
// those no longer shared. It reports whether it marked any as changed.
func (w *watcher) sync(ctx context.Context) bool {
	w.s.mu.Lock()
	want := map[identity.RepoID]string{}
	for repo, st := range w.s.states {
		if st.Path != "" {
			want[repo] = st.Path
		}
	}
	w.s.mu.Unlock()
	for repo, r := range w.repos {
		if want[repo] != r.path {
			w.unwatch(repo)
		}
	}
	marked := false
	for repo, path := range want {
		r := w.repos[repo]
		if r == nil {
			// Checked once at once: changes made before the watch was set
			// are not lost.
			r = &watchRepo{path: path, dirs: map[string]bool{}}
			w.repos[repo] = r
			w.pending[repo] = time.Now()
			marked = true
		}
		if w.fs != nil && len(r.dirs) == 0 {
			w.add(ctx, repo, r)
		}
	}
	return marked
}

// add sets the watches of r: its git directory (HEAD, packed-refs) and
// every directory under refs/. It reports whether any watch was set.
func (w *watcher) add(ctx context.Context, repo identity.RepoID, r *watchRepo) bool {
	gitDir, _, err := w.s.git.IsRepo(ctx, r.path)
	if err != nil {
		return false // the scan reports it
	}
	r.gitDir = gitDir
	w.addDir(repo, r, gitDir)
	w.addTree(repo, r, filepath.Join(gitDir, "refs"))
	if fi, err := os.Stat(filepath.Join(gitDir, "reftable")); err == nil && fi.IsDir() {
		w.addDir(repo, r, filepath.Join(gitDir, "reftable"))
	}
	return len(r.dirs) > 0
}

// addTree watches dir and every directory below it.
func (w *watcher) addTree(repo identity.RepoID, r *watchRepo, dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			w.addDir(repo, r, p)
		}
		return nil
	})
}

func (w *watcher) addDir(repo identity.RepoID, r *watchRepo, dir string) {
	if r.dirs[dir] {
		return
	}
	if err := w.fs.Add(dir); err != nil {
		w.s.log.Debug("watching a directory failed; the periodic scan covers it", "repo", repo, "dir", dir, "err", err)
		return
	}
	r.dirs[dir] = true
	w.byDir[dir] = repo
}

func (w *watcher) unwatch(repo identity.RepoID) {
	r := w.repos[repo]
	for dir := range r.dirs {
		_ = w.fs.Remove(dir)
		delete(w.byDir, dir)
	}
	delete(w.repos, repo)
	delete(w.pending, repo)
}

// event handles one notification and reports whether it marked a
// repository as changed.
func (w *watcher) event(ev fsnotify.Event) bool {
	dir, name := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	repo, ok := w.byDir[ev.Name]
	if ok && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		// A watched directory went away (the repository was removed, a
		// branch directory pruned): forget its watch, check the repository.
		r := w.repos[repo]
		delete(r.dirs, ev.Name)
		delete(w.byDir, ev.Name)
		w.pending[repo] = time.Now()
		return true
	}
	repo, ok = w.byDir[dir]
	if !ok {
		return false
	}
	r := w.repos[repo]
	if !w.relevant(r, dir, name) {
		return false
	}
	if ev.Has(fsnotify.Create) && strings.HasPrefix(ev.Name, filepath.Join(r.gitDir, "refs")) {
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			w.addTree(repo, r, ev.Name) // a new branch directory (refs/heads/topic/)
		}
	}
	w.pending[repo] = time.Now()
	return true
}

// relevant reports whether a change of name in dir can change r's refs:
// HEAD and packed-refs in the git directory, anything under refs/ or
// reftable/, never git's lock files (the rename that follows is the change).
func (w *watcher) relevant(r *watchRepo, dir, name string) bool {
	if strings.HasSuffix(name, ".lock") {
		return false
	}
	if dir == filepath.Clean(r.gitDir) {
		return name == "HEAD" || name == "packed-refs" || name == "refs" || name == "reftable"
	}
	return true
}

// flush publishes the repositories whose last change is at least
// watchDebounce old, and re-arms the timer for the others.
func (w *watcher) flush(ctx context.Context, t *time.Timer) {
	now := time.Now()
	var next time.Duration
	for repo, at := range w.pending {
		if wait := watchDebounce - now.Sub(at); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		delete(w.pending, repo)
		if r := w.repos[repo]; r != nil {
			w.s.checkWork(ctx, repo, r.path)
			if len(r.dirs) == 0 {
				w.add(ctx, repo, r) // it came back, or was replaced
			}
		}
	}
	if next > 0 {
		t.Reset(next)
	}
}
