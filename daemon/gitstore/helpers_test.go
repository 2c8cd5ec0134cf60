package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// testEnv is the environment of the git commands tests run themselves.
func testEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_AUTHOR_NAME=Test Author",
		"GIT_AUTHOR_EMAIL=author@example.org",
		"GIT_AUTHOR_DATE=1700000000 +0000",
		"GIT_COMMITTER_NAME=Test Committer",
		"GIT_COMMITTER_EMAIL=committer@example.org",
		"GIT_COMMITTER_DATE=1700000000 +0000",
	}
}

// gitT runs git in dir for a test's own setup and returns trimmed stdout.
func gitT(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return gitIn(tb, dir, nil, args...)
}

func gitIn(tb testing.TB, dir string, stdin []byte, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = testEnv(os.TempDir())
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// useTestUserEnv makes the user's environment (CloneTo, PullInto) free of
// the developer's git configuration.
func useTestUserEnv(t *testing.T) {
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	t.Setenv("GIT_AUTHOR_NAME", "Test Author")
	t.Setenv("GIT_AUTHOR_EMAIL", "author@example.org")
	t.Setenv("GIT_COMMITTER_NAME", "Test Committer")
	t.Setenv("GIT_COMMITTER_EMAIL", "committer@example.org")
}

// newWork makes an empty working repository on branch main.
func newWork(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "work")
	gitT(tb, "", "init", "--quiet", "--initial-branch=main", dir)
	return dir
}

// commitFile writes content to name in work tree dir and commits it;
// returns the new commit id.
func commitFile(tb testing.TB, dir, name, content, msg string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	gitT(tb, dir, "add", "--", name)
	gitT(tb, dir, "commit", "--quiet", "-m", msg)
	return gitT(tb, dir, "rev-parse", "HEAD")
}

func ctxT(tb testing.TB) context.Context {
	tb.Helper()
	return tb.Context()
}

func newBare(tb testing.TB, r *Runner) *Bare {
	tb.Helper()
	b, err := r.InitBare(ctxT(tb), filepath.Join(tb.TempDir(), "replica.git"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// refOIDs returns the oids of refs, in order.
func refOIDs(refs []Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.OID
	}
	return out
}

// packDirState lists objects/pack and any incoming-* directories.
func packDirState(tb testing.TB, b *Bare) []string {
	tb.Helper()
	var names []string
	for _, sub := range []string{"objects", "objects/pack"} {
		entries, err := os.ReadDir(filepath.Join(b.Dir, sub))
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if sub == "objects" && !strings.HasPrefix(e.Name(), "incoming-") {
				continue
			}
			names = append(names, sub+"/"+e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// genRepo builds a synthetic history with git fast-import: nfiles text
// files in 10 directories, each about lines lines long, then commits that
// each change a few lines in a few files. Deterministic.
type genRepo struct {
	tb    testing.TB
	dir   string
	rng   *rand.Rand
	files map[string][]string
	names []string
	time  int64
	n     int
}

var words = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike
november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu replica namespace
gossip signature packfile delta thin bitmap quic noise handshake`)

func newGenRepo(tb testing.TB, nfiles, lines int) *genRepo {
	tb.Helper()
	return newGenRepoSeeded(tb, nfiles, lines, 1)
}

// newGenRepoSeeded is newGenRepo with other contents for each seed.
func newGenRepoSeeded(tb testing.TB, nfiles, lines int, seed uint64) *genRepo {
	tb.Helper()
	g := &genRepo{tb: tb, dir: newWork(tb), rng: rand.New(rand.NewPCG(seed, 2)), files: map[string][]string{}, time: 1700000000}
	for i := range nfiles {
		name := fmt.Sprintf("dir%d/file%03d.txt", i%10, i)
		g.names = append(g.names, name)
		for range lines {
			g.files[name] = append(g.files[name], g.line())
		}
	}
	return g
}

func (g *genRepo) line() string {
	var sb strings.Builder
	for i := range 6 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[g.rng.IntN(len(words))])
	}
	fmt.Fprintf(&sb, " %d", g.rng.IntN(1_000_000))
	return sb.String()
}

// commit writes commits with fast-import: the first one adds every file,
// the others change changes lines in each of files random files.
func (g *genRepo) commits(n, files, changes int) {
	g.tb.Helper()
	var s bytes.Buffer
	existed := g.n > 0
	for i := range n {
		var touched []string
		if g.n == 0 {
			touched = g.names
		} else {
			for range files {
				name := g.names[g.rng.IntN(len(g.names))]
				lines := g.files[name]
				for range changes {
					lines[g.rng.IntN(len(lines))] = g.line()
				}
				touched = append(touched, name)
			}
		}
		g.n++
		g.time++
		msg := fmt.Sprintf("commit %d\n", g.n)
		fmt.Fprintf(&s, "commit refs/heads/main\ncommitter Gen <gen@example.org> %d +0000\ndata %d\n%s", g.time, len(msg), msg)
		if i == 0 && existed {
			// Restarting an import on an existing branch needs an explicit
			// parent; within one stream the branch's tip is implied.
			s.WriteString("from refs/heads/main^0\n")
		}
		for _, name := range touched {
			content := strings.Join(g.files[name], "\n") + "\n"
			fmt.Fprintf(&s, "M 100644 inline %s\ndata %d\n%s\n", name, len(content), content)
		}
	}
	gitIn(g.tb, g.dir, s.Bytes(), "fast-import", "--quiet")
}

// oneLine commits a one-line change to one file.
func (g *genRepo) oneLine() { g.commits(1, 1, 1) }

func (g *genRepo) head() string { return gitT(g.tb, g.dir, "rev-parse", "refs/heads/main") }

// contentSize is the size of the files at the tip.
func (g *genRepo) contentSize() int {
	n := 0
	for _, name := range g.names {
		n += len(strings.Join(g.files[name], "\n")) + 1
	}
	return n
}

// execGit prepares git in dir with the test environment.
func execGit(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = testEnv(os.TempDir())
	return cmd
}
