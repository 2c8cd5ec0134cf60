package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/logname"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// logBuffer is a node's log, written by its goroutines and read by the test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// has reports whether one line holds every part.
func (b *logBuffer) has(parts ...string) bool {
	for line := range strings.Lines(b.String()) {
		if containsAll(line, parts) {
			return true
		}
	}
	return false
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func loggedCfg(c Config, log *logBuffer) Config {
	c.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return c
}

// fullID matches a whole node or repository did.
var fullID = regexp.MustCompile(`did:(key|repo):z[1-9A-HJ-NP-Za-km-z]{20,}`)

// The log of a share and its replication names peers by alias and the
// repository by name, with short ids, and never writes a whole id.
func TestLogNamesNodesAndRepositories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logA, logB logBuffer
	a := start(t, loggedCfg(fastCfg(shortRoot(t), "alice"), &logA))
	b := start(t, loggedCfg(fastCfg(shortRoot(t), "bob", a), &logB))
	src := workRepo(t)
	info, err := a.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	repo := mustRepo(t, info.RepoID)
	alice, bob := logname.Node(a.ID(), "alice"), logname.Node(b.ID(), "bob")
	tiny := logname.Repo(repo, "tiny")

	// The first connection comes before bob's announcement: the alias
	// appears once it is known.
	testutil.WaitFor(t, "alice to log bob by alias", 10*time.Second, func() bool {
		return logA.has(`msg="discovered a node"`, `node="`+bob+`"`)
	})
	testutil.WaitFor(t, "alice to log the share by name", 10*time.Second, func() bool {
		return logA.has(`msg="repository shared"`, `repo="`+tiny+`"`)
	})
	testutil.WaitFor(t, "bob to log the first fetch from alice", 20*time.Second, func() bool {
		return logB.has(`msg="fetched repository updates"`, `repo="`+tiny+`"`, `from="`+alice+`"`)
	})
	commit(t, src, "new.txt", "new\n")
	testutil.WaitFor(t, "alice to log the published commit", 20*time.Second, func() bool {
		return logA.has(`msg="published new commits of a shared working repository"`, `repo="`+tiny+`"`)
	})
	testutil.WaitFor(t, "bob to log the update from alice", 20*time.Second, func() bool {
		return strings.Count(logB.String(), `from="`+alice+`"`) >= 2
	})

	whole := []string{a.ID().String(), b.ID().String(), repo.String(), identityTail(a.ID()), identityTail(b.ID()), repoTail(repo)}
	for name, log := range map[string]*logBuffer{"alice": &logA, "bob": &logB} {
		for line := range strings.Lines(log.String()) {
			if m := fullID.FindString(line); m != "" {
				t.Errorf("%s's log writes a whole id %s:\n%s", name, m, line)
			}
			for _, id := range whole {
				if strings.Contains(line, id) {
					t.Errorf("%s's log writes a whole id %s:\n%s", name, id, line)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("alice's log:\n%s\nbob's log:\n%s", logA.String(), logB.String())
	}
}

// identityTail and repoTail are ids without their did prefix, as they
// appear in namespaces and mega:// URLs.
func identityTail(id identity.NodeID) string { return strings.TrimPrefix(id.String(), "did:key:") }
func repoTail(id identity.RepoID) string     { return strings.TrimPrefix(id.String(), "did:repo:") }
