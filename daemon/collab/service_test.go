package collab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/megaengine/megaengine/daemon/gitstore"
	cob "github.com/megaengine/megaengine/protocol/collab"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// fakeReplica is one bare replica whose document names a delegate.
type fakeReplica struct {
	dir string
	doc *wire.RepoDoc

	mu        sync.Mutex
	published int
}

func (f *fakeReplica) Doc(identity.RepoID) (*wire.RepoDoc, error) { return f.doc, nil }
func (f *fakeReplica) Dir(identity.RepoID) string                 { return f.dir }
func (f *fakeReplica) PublishOwn(context.Context, identity.RepoID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published++
	return nil
}

func newKey(t *testing.T) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// setup makes a replica whose delegate is delegate, and a service for key
// on it.
func setup(t *testing.T, delegate *identity.Key) (*fakeReplica, identity.RepoID, *gitstore.Runner) {
	t.Helper()
	git := &gitstore.Runner{}
	dir := filepath.Join(t.TempDir(), "r.git")
	if _, err := git.InitBare(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	doc, err := wire.SignRepoDoc(delegate, wire.RepoDocFields{Root: make([]byte, 20), Name: "r", DefaultBranch: "main", Created: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeReplica{dir: dir, doc: doc}, doc.Repo(), git
}

func newService(t *testing.T, key *identity.Key, r *fakeReplica, git *gitstore.Runner, changed func(cob.ObjectID)) *Service {
	t.Helper()
	s, err := New(Config{Key: key, Git: git, Replica: r, Announce: func(*wire.ActivityAnnouncement) error { return nil },
		OnChanged: func(_ identity.RepoID, _ cob.ObjectType, id cob.ObjectID) {
			if changed != nil {
				changed(id)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Changes by two authors in one replica fold into one issue; what the fold
// would skip is refused before anything is written; a non-delegate's
// labels on open are dropped; a new service reads the same state back.
func TestWriteAndFold(t *testing.T) {
	ctx := context.Background()
	delegate, other := newKey(t), newKey(t)
	r, repo, git := setup(t, delegate)
	var changed []cob.ObjectID
	d := newService(t, delegate, r, git, func(id cob.ObjectID) { changed = append(changed, id) })
	o := newService(t, other, r, git, nil)

	is, err := o.Open(ctx, repo, "Bug", "It breaks.", []string{"bug"})
	if err != nil {
		t.Fatal(err)
	}
	if len(is.Labels) != 0 || is.Author != other.ID() {
		t.Fatalf("opened %+v", is)
	}
	if _, _, err := o.Act(ctx, repo, is.ID, &cob.Label{Add: []string{"bug"}}); !errors.Is(err, ErrPermission) {
		t.Fatalf("a non-delegate labelled: %v", err)
	}
	_, cid, err := d.Act(ctx, repo, is.ID, &cob.Comment{Body: "Confirmed."})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Act(ctx, repo, is.ID, &cob.Comment{Body: "Thanks.", ReplyTo: cid}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Act(ctx, repo, is.ID, &cob.Label{Add: []string{"bug"}}, &cob.Close{Reason: cob.ReasonSolved}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Act(ctx, repo, is.ID, &cob.React{Comment: cob.ChangeID{1}, Emoji: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a reaction to a missing comment: %v", err)
	}
	fresh := newService(t, newKey(t), r, git, nil)
	for _, s := range []*Service{d, o, fresh} {
		got, err := s.Issue(ctx, repo, is.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != cob.StatusClosed || !slices.Equal(got.Labels, []string{"bug"}) || len(got.Comments) != 2 || got.Comments[1].ReplyTo != cid || len(got.Heads) != 1 {
			t.Fatalf("folded %+v", got)
		}
	}
	if r.published != 4 || len(changed) != 2 {
		t.Fatalf("published %d times, told of %d changes; want 4 and 2", r.published, len(changed))
	}
	prefix := is.ID.String()[:6]
	if id, err := fresh.Resolve(ctx, repo, prefix); err != nil || id != is.ID {
		t.Fatalf("Resolve(%s) = %v, %v", prefix, id, err)
	}
	list, err := fresh.Issues(ctx, repo)
	if err != nil || len(list) != 1 || list[0].ID != is.ID {
		t.Fatalf("Issues = %v, %v", list, err)
	}
}

// Refresh tells of the issues whose refs moved since it last looked, and
// only of those.
func TestRefreshReportsMovedHeads(t *testing.T) {
	ctx := context.Background()
	delegate := newKey(t)
	r, repo, git := setup(t, delegate)
	var told []cob.ObjectID
	s := newService(t, delegate, r, git, func(id cob.ObjectID) { told = append(told, id) })
	is, err := s.Open(ctx, repo, "One", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	told = nil
	s.Refresh(ctx, repo)
	s.Refresh(ctx, repo)
	if !slices.Equal(told, []cob.ObjectID{is.ID}) {
		t.Fatalf("told of %v, want the issue once", told)
	}
}

// A commit that is not a change (a tree with another file, a blob over the
// limit) is left out without failing the load of the others.
func TestBadCommitsAreLeftOut(t *testing.T) {
	ctx := context.Background()
	delegate := newKey(t)
	r, repo, git := setup(t, delegate)
	s := newService(t, delegate, r, git, nil)
	is, err := s.Open(ctx, repo, "Good", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := git.OpenBare(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, cob.MaxChangeSize+1)
	ns := "z6MkBadBadBad"
	for i, c := range []gitstore.ChangeCommit{
		{BlobName: "other.txt", Blob: []byte("x"), Message: "m", Author: "m"},
		{BlobName: cob.BlobName, Blob: big, Message: "m", Author: "m"},
	} {
		ref := cob.RefName(cob.TypeIssue, cob.ObjectID{byte(i + 1)})
		if _, err := bare.WriteChange(ctx, ns, ref, "", c); err != nil {
			t.Fatal(err)
		}
	}
	list, err := newService(t, delegate, r, git, nil).Issues(ctx, repo)
	if err != nil || len(list) != 1 || list[0].ID != is.ID {
		t.Fatalf("Issues = %v, %v", list, err)
	}
}

func TestMain(m *testing.M) {
	if _, err := exec.LookPath("git"); err != nil {
		os.Exit(0)
	}
	os.Exit(m.Run())
}
