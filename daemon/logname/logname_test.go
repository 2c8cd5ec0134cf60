package logname

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

type fakeLookup struct {
	aliases map[identity.NodeID]string
	names   map[identity.RepoID]string
	calls   int
}

func (f *fakeLookup) Alias(id identity.NodeID) string    { f.calls++; return f.aliases[id] }
func (f *fakeLookup) RepoName(id identity.RepoID) string { f.calls++; return f.names[id] }

func ids(t *testing.T) (bob, stranger identity.NodeID, repo identity.RepoID) {
	t.Helper()
	kb, err := identity.KeyFromSeed(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := identity.KeyFromSeed(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	repo, err = identity.NewRepoID(bytes.Repeat([]byte{3}, 20), kb.ID())
	if err != nil {
		t.Fatal(err)
	}
	return kb.ID(), ks.ID(), repo
}

func TestIDsAreNamed(t *testing.T) {
	bob, stranger, repo := ids(t)
	look := &fakeLookup{aliases: map[identity.NodeID]string{bob: "bob"}, names: map[identity.RepoID]string{repo: "tiny"}}
	var buf bytes.Buffer
	log := Wrap(slog.New(slog.NewTextHandler(&buf, nil)), look).With("owner", bob)
	log.Info("fetched repository updates", "repo", repo, "from", stranger, slog.Group("via", "relay", bob))

	line := buf.String()
	for _, want := range []string{
		`msg="fetched repository updates"`,
		`owner="bob (` + bob.Short() + `)"`,
		`repo="tiny (` + repo.Short() + `)"`,
		`from=` + stranger.Short() + ` `,
		`via.relay="bob (` + bob.Short() + `)"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s:\n%s", want, line)
		}
	}
	for _, full := range []string{bob.String(), stranger.String(), repo.String()} {
		if strings.Contains(line, full) {
			t.Errorf("log line holds the full id %s:\n%s", full, line)
		}
	}
}

// Without the wrapper an id still logs as its short form.
func TestIDsLogShortByThemselves(t *testing.T) {
	bob, _, repo := ids(t)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "peer", bob, "repo", repo)
	if got := buf.String(); strings.Contains(got, bob.String()) || strings.Contains(got, repo.String()) ||
		!strings.Contains(got, bob.Short()) || !strings.Contains(got, repo.Short()) {
		t.Fatalf("ids not logged in short form: %s", got)
	}
}

func TestDroppedLinesCostNoLookup(t *testing.T) {
	bob, _, repo := ids(t)
	look := &fakeLookup{}
	var buf bytes.Buffer
	log := Wrap(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), look)
	log.Debug("sending a snapshot", "peer", bob, "repo", repo)
	if look.calls != 0 || buf.Len() != 0 {
		t.Fatalf("a dropped debug line made %d lookups and wrote %q", look.calls, buf.String())
	}
}
