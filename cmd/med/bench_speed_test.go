package main

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/daemon/replica"
	"github.com/megaengine/megaengine/internal/testutil"
)

// benchRepoEnv names a git repository to measure on instead of the
// generated one (a working or bare repository; it is cloned locally, by
// hard links, into a scratch working repository, and not modified).
const benchRepoEnv = "MEGAENGINE_BENCH_REPO"

// speedRounds is how many times each repeatable step is measured (medians).
const speedRounds = 3

// BenchmarkSpeed runs MegaEngine and git side by side on loopback, with the
// real binaries (med, mecli, git-remote-mega), and prints the ratios of
// the goals of spec/repo.md's "Cost". A step is run speedRounds times,
// MegaEngine and git one after the other, and its ratio is the median of
// the rounds' ratios (each MegaEngine time over git's of the same round):
//
//   - first clone: git clone mega:// on a node that has no replica yet (one
//     fetch from the owner, indexed once, then the replica's objects handed
//     over by hard links), and mecli repo clone on another such node,
//     against git clone git:// from git daemon serving the owner's working
//     repository (each MegaEngine clone on a node with no replica). The
//     holders' replicas have the bitmap their background maintenance
//     writes; the working repository git daemon serves has none, as a
//     clone has none;
//   - replicated clone: git clone mega:// and mecli repo clone once the
//     replica exists;
//   - one-commit update: mecli repo sync against git fetch (time; bytes:
//     MegaEngine's pack bytes, git's TCP payload both ways);
//   - commit → peer: a commit in the owner's working repository until the
//     peer's replica has it (fsnotify, announcement, fetch);
//   - peak RSS of the owner and the peer daemons (VmHWM) after all that;
//   - CPU of an owner sharing 100 unchanged repositories with a peer that
//     replicates them, and of an idle daemon with one peer.
//
// MEGAENGINE_BENCH_REPO=<path> measures on that repository (e.g. a clone
// of curl's history), else on a generated one.
//
//	go test -run '^$' -bench Speed -benchtime 1x ./cmd/med/
func BenchmarkSpeed(b *testing.B) {
	needBinaries(b)
	for range b.N {
		r := &speedRun{b: b}
		for _, step := range []struct {
			name string
			run  func()
		}{{"setup", r.setup}, {"clones", r.clones}, {"update", r.update}, {"latency", r.latency},
			{"rss", r.rss}, {"idle", r.idle}, {"report", r.report}} {
			fmt.Fprintf(os.Stderr, "speed: %s\n", step.name) // benchmark logs come only at the end
			step.run()
		}
	}
}

type speedRun struct {
	b                   *testing.B
	src, name           string // the owner's working repository
	rA, rB              string
	a, pb               *proc
	id, url, gitURL     string
	proxy               *byteProxy
	work                string
	firstMega, firstCLI samples // each on a node with no replica yet
	firstGit            samples
	megaRe, cliRe, gitC samples
	updMega, updGit     samples
	updMegaB, updGitB   int64
	lat                 samples
	rssA, rssB          int64
	cpuOwner, cpuIdle   float64
	gitClones           []string
}

type samples []time.Duration

func (s samples) med() time.Duration { return median(s) }

// ratios are s's samples each over the one of the same round in of: a
// drift of the machine's speed during the run (seconds on this kind of
// machine) cancels out of each.
func (s samples) ratios(of samples) []float64 {
	out := make([]float64, len(s))
	for i := range s {
		out[i] = s[i].Seconds() / of[i].Seconds()
	}
	return out
}

func (s samples) pct(p float64) time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	return c[min(len(c)-1, int(p*float64(len(c))))]
}

func (r *speedRun) setup() {
	b := r.b
	r.work = tempRoot(b)
	r.src = filepath.Join(r.work, "src")
	if p := os.Getenv(benchRepoEnv); p != "" {
		r.name = filepath.Base(strings.TrimSuffix(filepath.Clean(p), "/.git"))
		gitIn(b, r.work, "clone", "-q", "--single-branch", p, r.src)
	} else {
		r.name = "generated"
		genSpeedRepo(b, r.src, 2000)
	}
	r.rA, r.rB = tempRoot(b), tempRoot(b)
	authInit(b, r.rA)
	authInit(b, r.rB)
	r.a = startNode1(b, r.rA, "owner")
	r.pb = startNode1(b, r.rB, "peer", "--replicate", "none", "--bootstrap", r.a.stdoutField(b, "address"))
	var added repoJSON
	if err := mecliJSON(b, &added, "--root", r.rA, "repo", "add", "--path", r.src); err != nil {
		b.Fatal(err)
	}
	r.id = added.RepoID
	r.url = "mega://" + strings.TrimPrefix(r.id, "did:repo:")
	// The peer follows nothing (--replicate none): the clone below finds
	// the holder through gossip, and that is part of its time.
	r.proxy = newByteProxy(b, startGitDaemon(b, r.work))
	r.gitURL = "git://" + r.proxy.addr() + "/src"
	r.maintained(r.rA)
}

// maintained waits for the background maintenance of root's replica (a
// reachability bitmap of its largest pack, which full clones from it
// read), as a holder that has served for a while has had it: the clones
// timed next do not share the machine with it.
func (r *speedRun) maintained(root string) {
	dir := filepath.Join(root, "repos", strings.TrimPrefix(r.id, "did:repo:")+".git")
	bare, err := (&gitstore.Runner{}).OpenBare(dir)
	if err != nil {
		r.b.Fatal(err)
	}
	minPack := replica.DefaultConfig().BitmapMinPack
	testutil.WaitFor(r.b, "the replica's bitmap", 2*time.Minute, func() bool { return !bare.BitmapDue(minPack) })
}

// timed runs git or mecli with MEGAENGINE_ROOT=root and returns how long
// it took, after flushing dirty pages so earlier writes do not count.
func timed(b *testing.B, root, dir, bin string, args ...string) time.Duration {
	syscall.Sync()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MEGAENGINE_ROOT="+root, "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return time.Since(t0)
}

func (r *speedRun) clones() {
	b := r.b
	for i := range speedRounds {
		n := strconv.Itoa(i)
		// git first, so the source's pages are as warm for MegaEngine.
		d := filepath.Join(r.work, "f"+n)
		r.firstGit = append(r.firstGit, timed(b, r.rB, r.work, "git", "clone", "-q", r.gitURL, d))
		r.proxy.take()
		r.gitClones = append(r.gitClones, d)
		// The first round clones on the peer, which then holds the
		// replica the replicated clones below use; the others on fresh
		// nodes. mecli repo clone always on a fresh node.
		if i == 0 {
			r.firstMega = append(r.firstMega, timed(b, r.rB, r.work, "git", "clone", "-q", r.url, filepath.Join(r.work, "m0-"+n)))
			r.maintained(r.rB)
		} else {
			r.onFreshNode("git"+n, func(root string) {
				r.firstMega = append(r.firstMega, timed(b, root, r.work, "git", "clone", "-q", r.url, filepath.Join(r.work, "m0-"+n)))
			})
		}
		r.onFreshNode("cli"+n, func(root string) {
			r.firstCLI = append(r.firstCLI, timed(b, root, r.work, mecliBin, "--root", root, "repo", "clone", "--repo-id", r.id, "--output", filepath.Join(r.work, "c0-"+n)))
		})
	}
	for i := range speedRounds {
		d := filepath.Join(r.work, "g"+strconv.Itoa(i+1))
		r.gitC = append(r.gitC, timed(b, r.rB, r.work, "git", "clone", "-q", r.gitURL, d))
		r.proxy.take()
		r.gitClones = append(r.gitClones, d)
		r.megaRe = append(r.megaRe, timed(b, r.rB, r.work, "git", "clone", "-q", r.url, filepath.Join(r.work, "m"+strconv.Itoa(i+1))))
		r.cliRe = append(r.cliRe, timed(b, r.rB, r.work, mecliBin, "--root", r.rB, "repo", "clone", "--repo-id", r.id,
			"--output", filepath.Join(r.work, "c"+strconv.Itoa(i+1))))
	}
}

// onFreshNode runs fn with the root of a node that holds and follows
// nothing, bootstrapped from the owner and serving mecli (a clone on it
// finds the holder through gossip, and that is part of its time), then
// stops the node so it costs the later steps nothing.
func (r *speedRun) onFreshNode(alias string, fn func(root string)) {
	root := tempRoot(r.b)
	authInit(r.b, root)
	n := startNode1(r.b, root, alias, "--replicate", "none", "--bootstrap", r.a.stdoutField(r.b, "address"))
	n.stdoutField(r.b, "socket") // printed once it serves mecli
	fn(root)
	n.signal(r.b, syscall.SIGTERM)
	n.wait(r.b, 30*time.Second)
}

// commitSrc commits a one-line change in the owner's working repository
// and returns the new commit.
func (r *speedRun) commitSrc(i int) string {
	f := filepath.Join(r.src, "bench-edit.txt")
	os.WriteFile(f, []byte(fmt.Sprintf("change %d at %v\n", i, time.Now().UnixNano())), 0o644)
	timed(r.b, r.rA, r.src, "git", "add", "bench-edit.txt")
	timed(r.b, r.rA, r.src, "git", "commit", "-q", "-m", "bench "+strconv.Itoa(i))
	return gitIn(r.b, r.src, "rev-parse", "HEAD")
}

// replicaHead is the owner's main branch (or master) in root's replica.
func (r *speedRun) replicaHead(root string) string {
	repo, _, _ := repoOn(r.b, root, r.id)
	return repo.Head
}

func (r *speedRun) update() {
	b := r.b
	// The peer cloned, so it follows the repository: stop that for the
	// timed syncs, or it fetches the update by itself first.
	if err := mecliJSON(b, &repoJSON{}, "--root", r.rB, "repo", "unseed", r.id); err != nil {
		b.Fatal(err)
	}
	for i := range speedRounds {
		head := r.commitSrc(i)
		testutil.WaitFor(b, "the owner to publish", 30*time.Second, func() bool { return r.replicaHead(r.rA) == head })
		var res struct {
			Bytes int64 `json:"bytes"`
		}
		syscall.Sync()
		t0 := time.Now()
		if err := mecliJSON(b, &res, "--root", r.rB, "repo", "sync", r.id); err != nil {
			b.Fatal(err)
		}
		r.updMega = append(r.updMega, time.Since(t0))
		r.updMegaB += res.Bytes
		r.updGit = append(r.updGit, timed(b, r.rB, r.gitClones[i], "git", "fetch", "-q", "origin"))
		r.updGitB += r.proxy.take()
	}
	r.updMegaB /= speedRounds
	r.updGitB /= speedRounds
}

// latencyCommits is how many commits the commit → peer latency is taken of.
const latencyCommits = 15

func (r *speedRun) latency() {
	b := r.b
	if err := mecliJSON(b, &repoJSON{}, "--root", r.rB, "repo", "seed", r.id); err != nil {
		b.Fatal(err)
	}
	replica := filepath.Join(r.rB, "repos", strings.TrimPrefix(r.id, "did:repo:")+".git")
	owner := ""
	for i := range latencyCommits {
		head := r.commitSrc(100 + i)
		t0 := time.Now()
		if owner == "" {
			testutil.WaitFor(b, "the peer's replica", 30*time.Second, func() bool { return r.replicaHead(r.rB) == head })
			owner = nsHolding(b, replica, head)
			r.lat = append(r.lat, time.Since(t0))
			continue
		}
		ref := "refs/namespaces/" + owner + "/" + r.branchRef()
		testutil.WaitFor(b, "the peer's replica", 30*time.Second, func() bool {
			out, _ := exec.Command("git", "--git-dir="+replica, "rev-parse", "-q", "--verify", ref).Output()
			return strings.TrimSpace(string(out)) == head
		})
		r.lat = append(r.lat, time.Since(t0))
	}
}

func (r *speedRun) branchRef() string {
	return gitIn(r.b, r.src, "symbolic-ref", "HEAD")
}

// nsHolding finds the namespace of replica whose branch is at head.
func nsHolding(b *testing.B, replica, head string) string {
	out, err := exec.Command("git", "--git-dir="+replica, "for-each-ref", "--format=%(objectname) %(refname)", "refs/namespaces/").Output()
	if err != nil {
		b.Fatal(err)
	}
	for l := range strings.Lines(string(out)) {
		oid, ref, _ := strings.Cut(strings.TrimSpace(l), " ")
		if oid == head {
			return strings.SplitN(strings.TrimPrefix(ref, "refs/namespaces/"), "/", 2)[0]
		}
	}
	b.Fatalf("no namespace of %s is at %s", replica, head)
	return ""
}

func (r *speedRun) rss() {
	r.rssA = procStatus(r.b, r.a.cmd.Process.Pid, "VmHWM")
	r.rssB = procStatus(r.b, r.pb.cmd.Process.Pid, "VmHWM")
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(b *testing.B, pid int, field string) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for l := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return -1
}

// idleRepos is how many unchanged repositories the idle owner shares.
const idleRepos = 100

// speedIdleWindow is how long idle CPU is measured (MEGAENGINE_BENCH_IDLE, a
// Go duration, overrides it).
func speedIdleWindow() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MEGAENGINE_BENCH_IDLE")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}

func (r *speedRun) idle() {
	b := r.b
	rO, rP := tempRoot(b), tempRoot(b)
	authInit(b, rO)
	authInit(b, rP)
	o := startNode1(b, rO, "idle-owner")
	p := startNode1(b, rP, "idle-peer", "--bootstrap", o.stdoutField(b, "address"))
	base := filepath.Join(r.work, "idle")
	for i := range idleRepos {
		dir := filepath.Join(base, "r"+strconv.Itoa(i))
		os.MkdirAll(dir, 0o755)
		timed(b, rO, dir, "git", "init", "-q", "-b", "main")
		os.WriteFile(filepath.Join(dir, "README"), []byte("repository "+strconv.Itoa(i)+"\n"), 0o644)
		timed(b, rO, dir, "git", "add", "README")
		timed(b, rO, dir, "git", "commit", "-q", "-m", "r"+strconv.Itoa(i))
		if err := mecliJSON(b, &repoJSON{}, "--root", rO, "repo", "add", "--path", dir); err != nil {
			b.Fatal(err)
		}
	}
	testutil.WaitForState(b, "the peer to replicate every repository", 120*time.Second, func() (bool, string) {
		var list []repoJSON
		if err := mecliJSON(b, &list, "--root", rP, "repo", "list"); err != nil {
			return false, err.Error()
		}
		n := 0
		for _, x := range list {
			if x.Replica == "up-to-date" {
				n++
			}
		}
		return n == idleRepos, strconv.Itoa(n) + " up to date"
	})
	w := speedIdleWindow()
	c0o, c0p := cpuSeconds(b, o), cpuSeconds(b, p)
	time.Sleep(w) // the measurement window itself, not a synchronisation
	r.cpuOwner = (cpuSeconds(b, o) - c0o) / w.Seconds()
	r.cpuIdle = (cpuSeconds(b, p) - c0p) / w.Seconds()
}

// cpuSeconds is the CPU time p has used so far, with the children it
// waited for (cpuTime).
func cpuSeconds(b *testing.B, p *proc) float64 {
	d, err := cpuTime(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return d.Seconds()
}

func (r *speedRun) report() {
	sec := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
	var t strings.Builder
	fmt.Fprintf(&t, "repository %s: %s commits, pack %s\n", r.name, gitIn(r.b, r.src, "rev-list", "--count", "HEAD"), packSize(r.src))
	fmt.Fprintf(&t, "%-40s %8s %8s %6s  %-6s  %s\n", "(medians; ratio: of the rounds' ratios)", "mega s", "git s", "ratio", "goal", "each round's ratio")
	ratios := map[string]float64{}
	row := func(what string, m, g samples, goal string) {
		rs := m.ratios(g)
		each := make([]string, len(rs))
		for i, x := range rs {
			each[i] = strconv.FormatFloat(x, 'f', 2, 64)
		}
		ratios[what] = median(rs)
		fmt.Fprintf(&t, "%-40s %8s %8s %6.2f  %-6s  %s\n", what, sec(m.med()), sec(g.med()), ratios[what], goal, strings.Join(each, " "))
	}
	row("first clone: git clone mega://", r.firstMega, r.firstGit, "<= 1.1")
	row("first clone: mecli repo clone", r.firstCLI, r.firstGit, "<= 1.1")
	row("replicated: git clone mega://", r.megaRe, r.gitC, "<= 0.3")
	row("replicated: mecli repo clone", r.cliRe, r.gitC, "<= 0.3")
	row("one-commit update: time", r.updMega, r.updGit, "<= 0.5")
	fmt.Fprintf(&t, "%-40s %8d %8d %6.2f  <= 0.5   (mega: pack bytes; git: TCP both ways)\n", "one-commit update: bytes",
		r.updMegaB, r.updGitB, float64(r.updMegaB)/float64(r.updGitB))
	fmt.Fprintf(&t, "commit -> peer replica (%d commits): median %s s, p90 %s s, max %s s  goal median <= 0.3\n",
		len(r.lat), sec(r.lat.med()), sec(r.lat.pct(0.9)), sec(slices.Max(r.lat)))
	fmt.Fprintf(&t, "peak RSS: owner %.0f MB, peer %.0f MB  goal < 150\n", float64(r.rssA)/1e6, float64(r.rssB)/1e6)
	fmt.Fprintf(&t, "CPU over %v: owner of %d unchanged repositories %.2f %% of a core (goal <= 2), its peer replicating them %.2f %% (goal for an idle daemon with one peer <= 0.5)\n",
		speedIdleWindow(), idleRepos, 100*r.cpuOwner, 100*r.cpuIdle)
	r.b.ReportMetric(ratios["first clone: git clone mega://"], "first-clone-ratio")
	r.b.ReportMetric(ratios["first clone: mecli repo clone"], "first-cli-clone-ratio")
	r.b.ReportMetric(ratios["replicated: git clone mega://"], "replicated-clone-ratio")
	r.b.ReportMetric(ratios["one-commit update: time"], "update-time-ratio")
	r.b.ReportMetric(float64(r.updMegaB)/float64(r.updGitB), "update-bytes-ratio")
	r.b.ReportMetric(r.lat.med().Seconds(), "commit-peer-s")
	r.b.ReportMetric(100*r.cpuOwner, "owner100-cpu-%")
	r.b.ReportMetric(float64(max(r.rssA, r.rssB))/1e6, "peak-rss-MB")
	r.b.ReportMetric(100*r.cpuIdle, "peer100-cpu-%")
	// The framework keeps only 10 lines of a benchmark's log: the table
	// goes to stderr whole.
	fmt.Fprint(os.Stderr, t.String())
}

func median[T cmp.Ordered](xs []T) T {
	c := slices.Clone(xs)
	slices.Sort(c)
	return c[(len(c)-1)/2]
}

// packSize is the size of dir's packs, as git count-objects says.
func packSize(dir string) string {
	out, _ := exec.Command("git", "-C", dir, "count-objects", "-vH").Output()
	for l := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(l, "size-pack: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// genSpeedRepo writes a working repository of n commits with git
// fast-import: 400 files of ~120 lines in 20 directories, each commit
// rewriting a few lines of two files.
func genSpeedRepo(b *testing.B, dir string, n int) {
	os.MkdirAll(dir, 0o755)
	gitIn(b, dir, "init", "-q", "-b", "main")
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = dir
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	files := make([][]string, 400)
	for i := range files {
		for j := range 120 {
			files[i] = append(files[i], fmt.Sprintf("func f%d_%d(x int) int { return x*%d + %d } // %x", i, j, j, i, i*j*2654435761))
		}
	}
	put := func(f int) {
		body := strings.Join(files[f], "\n") + "\n"
		fmt.Fprintf(in, "M 644 inline d%02d/f%03d.go\ndata %d\n%s", f%20, f, len(body), body)
	}
	for c := range n {
		msg := fmt.Sprintf("commit %05d\n", c)
		fmt.Fprintf(in, "commit refs/heads/main\ncommitter t <t@example.org> %d +0000\ndata %d\n%s", 1700000000+c*60, len(msg), msg)
		if c == 0 {
			for f := range files {
				put(f)
			}
			continue
		}
		for k := range 2 {
			f := (c*7 + k*13) % len(files)
			files[f][(c*(k+1))%120] = fmt.Sprintf("// edited in commit %d", c)
			put(f)
		}
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	gitIn(b, dir, "reset", "-q", "--hard", "main")
	gitIn(b, dir, "repack", "-adq")
}

// startGitDaemon serves the repositories under base over git:// and
// returns its address.
func startGitDaemon(b *testing.B, base string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// Its own process group, without pipes: git daemon forks a process per
	// connection, and all of them go when the benchmark ends.
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+base,
		"--listen=127.0.0.1", "--port="+strconv.Itoa(port), base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	testutil.WaitFor(b, "git daemon to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// byteProxy relays TCP to git daemon and counts the payload both ways.
type byteProxy struct {
	ln net.Listener
	n  atomic.Int64
}

func newByteProxy(b *testing.B, target string) *byteProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := &byteProxy{ln: ln}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(c, target)
		}
	}()
	return p
}

func (p *byteProxy) addr() string { return p.ln.Addr().String() }

func (p *byteProxy) relay(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		n, _ := io.Copy(up, c)
		p.n.Add(n)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	n, _ := io.Copy(c, up)
	p.n.Add(n)
	c.(*net.TCPConn).CloseWrite()
	<-done
}

// take returns the bytes counted since the last take.
func (p *byteProxy) take() int64 { return p.n.Swap(0) }
