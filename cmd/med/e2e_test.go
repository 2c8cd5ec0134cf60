package main

// End-to-end tests: the real med and mecli binaries, built once by
// TestMain, run as separate processes on loopback and are driven only
// through their command lines, exit statuses, stdout/stderr and the files
// they leave behind — what a user sees.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// Paths of the binaries TestMain built; skipReason is set instead when
// there is no go tool to build them with.
var (
	medBin, mecliBin string
	skipReason       string
)

// raceEnabled is set by race_test.go when the tests run under -race; the
// binaries are then built with -race too, so the end-to-end runs check the
// real daemon for data races (the instrumented packages are already in the
// build cache from compiling this test, so this costs little more than a
// link).
var raceEnabled bool

// idleTimeout is given to every daemon in these tests. A peer killed with
// SIGKILL sends no CONNECTION_CLOSE, so the survivor only notices it through
// the QUIC idle timeout (default 20 s). 3 s keeps the test fast; quic-go
// sends keep-alives every idleTimeout/2, so a live but quiet connection
// still never times out.
const idleTimeout = 3 * time.Second

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if p, lerr := exec.LookPath("go"); lerr == nil {
			goBin = p
		} else {
			skipReason = fmt.Sprintf("no go tool to build med and mecli with (%v; not on PATH either)", err)
			return m.Run()
		}
	}
	dir, err := os.MkdirTemp("", "me-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", dir+string(filepath.Separator),
		"github.com/megaengine/megaengine/cmd/med", "github.com/megaengine/megaengine/cmd/mecli",
		"github.com/megaengine/megaengine/cmd/git-remote-mega")
	if out, err := exec.Command(goBin, args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %s %s: %v\n%s", goBin, strings.Join(args, " "), err, out)
		return 1
	}
	medBin, mecliBin = filepath.Join(dir, "med"), filepath.Join(dir, "mecli")
	// git finds git-remote-mega on PATH: the one just built comes first
	// for every child process.
	os.Setenv("PATH", dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	if raceEnabled {
		// A race-enabled program sleeps 1 s at exit by default; every
		// mecli call would pay it.
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	return m.Run()
}

func needBinaries(tb testing.TB) {
	tb.Helper()
	if skipReason != "" {
		tb.Skip(skipReason)
	}
}

// tempRoot makes a node root short enough for the unix socket path limit
// (107 bytes on Linux): t.TempDir's long names would not fit.
func tempRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "me")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// syncBuffer is a bytes.Buffer that a process may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a long-running process (a daemon) started by a test.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{} // closed once the process has exited
	state          *os.ProcessState
	waitErr        error
}

// startProc starts bin and arranges for it to be killed when the test ends;
// if the test failed, its output is logged then.
func startProc(tb testing.TB, name, bin string, args ...string) *proc {
	tb.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	tb.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			tb.Errorf("%s reported a data race", name)
		}
		if tb.Failed() {
			tb.Logf("---- %s (%s %s), %v\nstdout:\n%s\nstderr:\n%s", name, filepath.Base(bin), strings.Join(args, " "),
				p.state, p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stdoutField waits for the line "key: value" on the daemon's stdout (med
// prints did, address and socket once it is ready) and returns value.
func (p *proc) stdoutField(tb testing.TB, key string) string {
	tb.Helper()
	var val string
	testutil.WaitForState(tb, p.name+" to print its "+key, 20*time.Second, func() (bool, string) {
		sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
				val = strings.TrimSpace(v)
				return true, ""
			}
		}
		if p.exited() {
			tb.Fatalf("%s exited (%v) before printing its %s; stderr:\n%s", p.name, p.state, key, p.stderr.String())
		}
		return false, fmt.Sprintf("stdout so far: %q", p.stdout.String())
	})
	return val
}

// signal sends sig to the process.
func (p *proc) signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signalling %s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns its exit code (-1 if a
// signal killed it).
func (p *proc) wait(tb testing.TB, d time.Duration) int {
	tb.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(d):
		tb.Fatalf("%s still running after %v", p.name, d)
		return 0
	}
}

// result is what a short command did.
type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs bin to completion (at most 30 s).
func runCmd(tb testing.TB, bin string, args ...string) result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		tb.Fatalf("running %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	if strings.Contains(stderr.String(), "WARNING: DATA RACE") {
		tb.Errorf("%s %s reported a data race:\n%s", filepath.Base(bin), strings.Join(args, " "), stderr.String())
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// mecliJSON runs mecli with --json and decodes its output into v. It
// reports a failed command as an error, for callers that poll.
func mecliJSON(tb testing.TB, v any, args ...string) error {
	tb.Helper()
	r := runCmd(tb, mecliBin, append(args, "--json")...)
	if r.code != 0 {
		return fmt.Errorf("mecli %s: exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		return fmt.Errorf("mecli %s: decoding %q: %w", strings.Join(args, " "), r.stdout, err)
	}
	return nil
}

// nodeJSON is the part of node.peers' and node.list's elements these tests read.
type nodeJSON struct {
	DID       string   `json:"did"`
	Alias     string   `json:"alias"`
	Addresses []string `json:"addresses"`
}

func describe(nodes []nodeJSON) string {
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%s(%s)%v", n.DID, n.Alias, n.Addresses))
	}
	sort.Strings(s)
	return "[" + strings.Join(s, " ") + "]"
}

func find(nodes []nodeJSON, did string) (nodeJSON, bool) {
	for _, n := range nodes {
		if n.DID == did {
			return n, true
		}
	}
	return nodeJSON{}, false
}

// waitPeer waits until root's daemon lists did as a connected peer (want)
// or no longer lists it (!want).
func waitPeer(tb testing.TB, root, did string, want bool, d time.Duration) {
	tb.Helper()
	what := fmt.Sprintf("%s to list peer %s", root, did)
	if !want {
		what = fmt.Sprintf("%s to drop peer %s", root, did)
	}
	testutil.WaitForState(tb, what, d, func() (bool, string) {
		var peers []nodeJSON
		if err := mecliJSON(tb, &peers, "--root", root, "node", "peers"); err != nil {
			return false, err.Error()
		}
		_, ok := find(peers, did)
		return ok == want, describe(peers)
	})
}

func authInit(tb testing.TB, root string) string {
	tb.Helper()
	var r struct {
		DID string `json:"did"`
	}
	if err := mecliJSON(tb, &r, "--root", root, "auth", "init"); err != nil {
		tb.Fatal(err)
	}
	if !strings.HasPrefix(r.DID, "did:key:z6Mk") {
		tb.Fatalf("auth init in %s gave %q, want a did:key:z6Mk… id", root, r.DID)
	}
	return r.DID
}

// startNode1 runs med itself on root; startNode2 uses the seed's command,
// mecli node start, which execs med with the flags translated (and passes
// what follows "--" through).
func startNode1(tb testing.TB, root, alias string, extra ...string) *proc {
	tb.Helper()
	args := append([]string{"--root", root, "--listen", "127.0.0.1:0", "--alias", alias,
		"--idle-timeout", idleTimeout.String()}, extra...)
	return startProc(tb, alias, medBin, args...)
}

func startNode2(tb testing.TB, root, alias, bootstrap string) *proc {
	tb.Helper()
	return startProc(tb, alias, mecliBin, "--root", root, "node", "start", "--alias", alias,
		"--addr", "127.0.0.1:0", "--bootstrap-node", bootstrap, "--", "--idle-timeout", idleTimeout.String())
}

// logLine is one line of med's --log-format json output.
type logLine struct {
	Msg    string `json:"msg"`
	Peer   string `json:"peer"`
	Reason string `json:"reason"`
}

// disconnectReasons returns the reasons node logged for losing did. Logs
// name a node by its alias and short id, "node2 (…Zq7oMMsw)".
func disconnectReasons(p *proc, did string) []string {
	short := "…" + did[len(did)-8:]
	var out []string
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "peer disconnected" && (l.Peer == short || strings.HasSuffix(l.Peer, "("+short+")")) {
			out = append(out, l.Reason)
		}
	}
	return out
}

func TestTwoNodes(t *testing.T) {
	needBinaries(t)
	began := time.Now()
	step := func(name string) { t.Logf("%6.2fs  %s", time.Since(began).Seconds(), name) }
	r1, r2 := tempRoot(t), tempRoot(t)

	step("1. identities")
	did1, did2 := authInit(t, r1), authInit(t, r2)
	if did1 == did2 {
		t.Fatalf("two roots got the same identity %s", did1)
	}

	step("2. start node1 (med) and node2 (mecli node start)")
	// node1 logs JSON so the test can read why it lost a peer.
	node1 := startNode1(t, r1, "node1", "--log-format", "json")
	addr1 := node1.stdoutField(t, "address")
	if !strings.HasPrefix(addr1, did1+"@127.0.0.1:") || strings.HasSuffix(addr1, ":0") {
		t.Fatalf("node1 printed address %q; want %s@127.0.0.1:<port>", addr1, did1)
	}
	if got := node1.stdoutField(t, "did"); got != did1 {
		t.Fatalf("node1 runs as %s, not the identity auth init made (%s)", got, did1)
	}
	if got := node1.stdoutField(t, "socket"); got != filepath.Join(r1, "med.sock") {
		t.Fatalf("node1's socket is %q", got)
	}
	node2 := startNode2(t, r2, "node2", addr1)
	if addr2 := node2.stdoutField(t, "address"); !strings.HasPrefix(addr2, did2+"@127.0.0.1:") {
		t.Fatalf("node2 printed address %q; want %s@127.0.0.1:<port>", addr2, did2)
	}

	step("3. both list each other as peers")
	waitPeer(t, r1, did2, true, 15*time.Second)
	waitPeer(t, r2, did1, true, 15*time.Second)

	step("4. node list on each shows both, with their aliases")
	for _, root := range []string{r1, r2} {
		testutil.WaitForState(t, root+"'s node list to hold node1 and node2", 15*time.Second, func() (bool, string) {
			var nodes []nodeJSON
			if err := mecliJSON(t, &nodes, "--root", root, "node", "list"); err != nil {
				return false, err.Error()
			}
			n1, ok1 := find(nodes, did1)
			n2, ok2 := find(nodes, did2)
			return ok1 && ok2 && n1.Alias == "node1" && n2.Alias == "node2" &&
				len(n1.Addresses) > 0 && len(n2.Addresses) > 0, describe(nodes)
		})
	}

	step("5. the control socket is a socket with mode 0600")
	st, err := os.Stat(filepath.Join(r1, "med.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want a socket with 0600", filepath.Join(r1, "med.sock"), st.Mode())
	}

	step("6a. SIGKILL node2: node1 notices through the idle timeout")
	node2.signal(t, syscall.SIGKILL)
	if code := node2.wait(t, 10*time.Second); code != -1 {
		t.Fatalf("node2 after SIGKILL: exit code %d, want death by signal", code)
	}
	killed := time.Now()
	waitPeer(t, r1, did2, false, 5*idleTimeout)
	t.Logf("node1 dropped the killed peer after %v (idle timeout %v)", time.Since(killed).Round(time.Millisecond), idleTimeout)

	step("6b. restart node2 on the same root (its stale socket is replaced)")
	node2 = startNode2(t, r2, "node2", addr1)
	if got := node2.stdoutField(t, "did"); got != did2 {
		t.Fatalf("restarted node2 runs as %s, want %s", got, did2)
	}
	waitPeer(t, r1, did2, true, 15*time.Second)
	waitPeer(t, r2, did1, true, 15*time.Second)

	step("6c. SIGTERM node2: a clean stop")
	before := len(disconnectReasons(node1, did2))
	node2.signal(t, syscall.SIGTERM)
	stopped := time.Now()
	// Well under the idle timeout: only the CONNECTION_CLOSE node2 sends on
	// its way out can make node1 drop it this soon. The log checked below
	// says so explicitly.
	waitPeer(t, r1, did2, false, idleTimeout/2)
	t.Logf("node1 dropped the stopped peer after %v", time.Since(stopped).Round(time.Millisecond))
	if code := node2.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("node2 after SIGTERM: exit code %d, want 0; stderr:\n%s", code, node2.stderr.String())
	}
	if _, err := os.Lstat(filepath.Join(r2, "med.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("node2's socket is still there after a clean stop: %v", err)
	}
	testutil.WaitForState(t, "node1 to log why node2 left", 5*time.Second, func() (bool, string) {
		reasons := disconnectReasons(node1, did2)
		return len(reasons) > before && strings.Contains(reasons[len(reasons)-1], "shutting down"), fmt.Sprintf("%q", reasons)
	})

	step("7. mecli without a daemon: one clear line, non-zero exit")
	r := runCmd(t, mecliBin, "--root", r2, "node", "peers")
	if r.code == 0 {
		t.Fatalf("node peers with no daemon exited 0; stdout %q", r.stdout)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	if line == "" || strings.Contains(line, "\n") || r.stdout != "" {
		t.Fatalf("want one line on stderr and nothing on stdout; got stderr %q stdout %q", r.stderr, r.stdout)
	}
	if !strings.Contains(line, "no daemon running") || !strings.Contains(line, "med --root "+r2) || !strings.Contains(line, "mecli node start") {
		t.Fatalf("the error should say no daemon runs and how to start one: %q", line)
	}

	step("8. a second med on node1's root is refused")
	r = runCmd(t, medBin, "--root", r1, "--listen", "127.0.0.1:0", "--idle-timeout", idleTimeout.String())
	if r.code != 1 || !strings.Contains(r.stderr, "already running") {
		t.Fatalf("second med on %s: exit %d, stderr %q; want exit 1 and \"already running\"", r1, r.code, r.stderr)
	}
	// And the refusal did not disturb node1: its socket still answers.
	var info struct {
		DID string `json:"did"`
	}
	if err := mecliJSON(t, &info, "--root", r1, "node", "status"); err != nil || info.DID != did1 {
		t.Fatalf("node1 after the refused second daemon: %v (did %q)", err, info.DID)
	}

	step("node1 stops cleanly on SIGTERM")
	node1.signal(t, syscall.SIGTERM)
	if code := node1.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("node1 after SIGTERM: exit code %d, want 0", code)
	}
	if _, err := os.Lstat(filepath.Join(r1, "med.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("node1's socket is still there after a clean stop: %v", err)
	}
	step("done")
}

func TestHelpAndBadFlags(t *testing.T) {
	needBinaries(t)
	for _, tc := range []struct {
		bin  string
		args []string
		want []string
	}{
		{medBin, []string{"--help"}, []string{"--root", "--listen", "--alias", "--bootstrap", "--relay", "--idle-timeout", "SIGTERM"}},
		{mecliBin, []string{"--help"}, []string{"--root", "--json", "auth init", "node start", "node peers", "node list"}},
		{mecliBin, []string{"node", "start", "--help"}, []string{"--alias", "--addr", "--bootstrap-node"}},
	} {
		r := runCmd(t, tc.bin, tc.args...)
		name := filepath.Base(tc.bin) + " " + strings.Join(tc.args, " ")
		if r.code != 0 {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s does not mention %q:\n%s", name, w, r.stdout)
			}
		}
	}

	// A bad flag value is a usage error (2), said in one place, and
	// nothing is created on disk.
	root := filepath.Join(tempRoot(t), "never-created")
	r := runCmd(t, medBin, "--root", root, "--bootstrap", "garbage")
	if r.code != 2 {
		t.Errorf("med --bootstrap garbage: exit %d, want 2; stderr %q", r.code, r.stderr)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	for _, w := range []string{"--bootstrap", `"garbage"`, "did:key:…@host:port"} {
		if !strings.Contains(first, w) {
			t.Errorf("med --bootstrap garbage: first line of stderr %q does not mention %s", first, w)
		}
	}
	if r.stdout != "" {
		t.Errorf("med --bootstrap garbage printed on stdout: %q", r.stdout)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("med --bootstrap garbage touched its root: %v", err)
	}
}
