//go:build linux || darwin

package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/rpc"
)

// transferRounds is how many times each transfer is measured; the metrics
// are the medians.
const transferRounds = 3

// BenchmarkRepoTransfer compares MegaEngine with plain git on loopback, on
// one generated repository of realistic size (genRepo: ~2000 source files
// in nested directories, 3000 commits of small edits, a side branch and
// tags: ~27k objects in a 7 MB pack).
//
//   - Full clone. MegaEngine: node A (cfg defaults) adds the repository
//     (not timed); a fresh node B (Replicate none, so nothing moves before
//     the clock starts) runs RepoSync (the fetch exchange over QUIC:
//     pack-objects on A, index-pack --strict and the connectivity check on
//     B) and then RepoClone (a working copy from B's replica, checked out).
//     git: `git clone git://` from `git daemon` serving the same working
//     repository, and the same clone with transfer.fsckObjects=true
//     (MegaEngine checks every object; git does not by default).
//   - One-commit update: a one-line change committed in A's working
//     repository; once A has published it (not timed), each B's RepoSync is
//     timed against `git fetch` in each git clone.
//
// Before each timed step the benchmark flushes the page cache's dirty
// pages (sync(2)), so that writing back what an earlier step wrote does
// not land in its time: checking out ~2000 files varies from 0.3 to 1.5 s
// on a virtual disk otherwise.
//
// Each full clone is made transferRounds times (a new node B each time,
// MegaEngine and git alternating) and each update as many times (every B
// and every git clone fetches it); the metrics are medians, the table also
// shows the range.
//
// Bytes: git's are counted on the wire (TCP payload both ways) by a relay
// between git and git daemon; MegaEngine's as pack bytes (SyncResult.Bytes)
// and on the wire (QUIC payload both ways of B's connection to A, from
// quic-go's ConnectionStats; the wire metrics are absent if that cannot be
// read, see quicBytes).
//
// Metrics (seconds and bytes): mega-sync-s, mega-clone-s, mega-total-s,
// mega-bytes (pack), mega-wire-bytes, git-clone-s, git-clone-fsck-s,
// git-clone-bytes, mega-update-s, mega-update-bytes (pack),
// mega-update-wire-bytes, git-fetch-s, git-fetch-bytes, and the ratios
// MegaEngine/git: clone-ratio (mega-total-s / git-clone-s),
// clone-fsck-ratio (against the fsck clone), clone-bytes-ratio (wire),
// update-time-ratio and update-bytes-ratio (wire bytes when MegaEngine's
// are known, else its pack bytes). ns/op is mega-total-s.
//
// The scenario takes ~30 s whatever b.N is, so it is run once per call:
// with the default -benchtime the framework calls it with b.N = 1 only; a
// larger b.N (-benchtime=Nx) does not repeat it (use -count for that).
//
//	go test -run '^$' -bench RepoTransfer -benchtime 1x ./daemon/
func BenchmarkRepoTransfer(b *testing.B) {
	needGitDaemon(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.StopTimer()

	t0 := time.Now()
	src := filepath.Join(shortRoot(b), "gen")
	gen := genRepo(b, src)
	genTime := time.Since(t0)

	na := start(b, cfg(shortRoot(b), "a"))
	t0 = time.Now()
	info, err := na.RepoAdd(ctx, rpc.RepoAddParams{Path: src})
	if err != nil {
		b.Fatal(err)
	}
	addTime := time.Since(t0)
	repo := mustRepo(b, info.RepoID)
	params := rpc.RepoIDParams{RepoID: info.RepoID}
	oldHead := git(b, src, "rev-parse", "HEAD")
	daemonAddr := startGitDaemon(b, filepath.Dir(src))
	proxy := newCountingProxy(b, daemonAddr)
	url := "git://" + proxy.addr() + "/" + filepath.Base(src)

	var (
		megaSync, megaClone, megaTotal, gitClone, gitFsck, megaUpd, gitFetch samples[time.Duration]
		megaPack, megaWire, gitBytes, megaUpdPack, megaUpdWire, fetchBytes   samples[int64]
		cpuSync, cpuClone                                                    cpuUse
		nodes                                                                []*running
		gitClones                                                            []string
	)
	wireOK := true
	for i := range transferRounds {
		// ---- MegaEngine: full clone on a fresh node ----
		nb := start(b, func() Config {
			c := fastCfg(shortRoot(b), fmt.Sprintf("b%d", i), na)
			c.Replicate = ReplicateNone
			return c
		}())
		testutil.WaitFor(b, "B to know that A holds the repository", 20*time.Second, func() bool {
			return slices.Contains(nb.replica.Holders(repo), na.ID()) && nb.tr.Peer(na.ID()) != nil
		})
		peer := nb.tr.Peer(na.ID())
		syscall.Sync()
		w0, ok0 := quicBytes(peer)
		c0 := cpuTimes()
		t0 = time.Now()
		full, err := nb.RepoSync(ctx, params, nil)
		dSync := time.Since(t0)
		if err != nil || !full.Updated || full.From != na.ID().String() {
			b.Fatalf("full sync: %+v %v", full, err)
		}
		c1 := cpuTimes()
		cpuSync = cpuSync.plus(c1.minus(c0))
		w1, ok1 := quicBytes(peer)
		wireOK = wireOK && ok0 && ok1 && nb.tr.Peer(na.ID()) == peer
		dest := filepath.Join(shortRoot(b), "mega-clone")
		syscall.Sync()
		c1 = cpuTimes()
		t0 = time.Now()
		cl, err := nb.RepoClone(ctx, rpc.RepoCloneParams{RepoID: info.RepoID, Path: dest}, nil)
		dClone := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		c2 := cpuTimes()
		if cl.Head != oldHead {
			b.Fatalf("MegaEngine clone at %s, want %s", cl.Head, oldHead)
		}
		// B seeds what it cloned: it would start syncing the update below by
		// itself as soon as A announces it, racing the timed RepoSync.
		if _, err := nb.RepoSeed(ctx, params, false); err != nil {
			b.Fatal(err)
		}
		megaSync.add(dSync)
		megaClone.add(dClone)
		megaTotal.add(dSync + dClone)
		megaPack.add(full.Bytes)
		megaWire.add(int64(w1 - w0))
		cpuClone = cpuClone.plus(c2.minus(c1))
		nodes = append(nodes, nb)

		// ---- git: full clone, and one with fsck ----
		gitDest := filepath.Join(shortRoot(b), "git-clone")
		syscall.Sync()
		t0 = time.Now()
		git(b, filepath.Dir(gitDest), "clone", "-q", url, gitDest)
		gitClone.add(time.Since(t0))
		gitBytes.add(proxy.take(b))
		gitClones = append(gitClones, gitDest)
		fsckDest := filepath.Join(shortRoot(b), "git-clone-fsck")
		syscall.Sync()
		t0 = time.Now()
		git(b, filepath.Dir(fsckDest), "-c", "transfer.fsckObjects=true", "clone", "-q", url, fsckDest)
		gitFsck.add(time.Since(t0))
		proxy.take(b)
	}

	// ---- one-commit update ----
	text, err := os.ReadFile(filepath.Join(src, gen.editable))
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.SplitAfter(string(text), "\n")
	lines[len(lines)/2] = "\t// a one-line change for the update benchmark\n"
	head := commit(b, src, gen.editable, strings.Join(lines, ""))
	testutil.WaitFor(b, "A to publish the commit", 20*time.Second, func() bool { return headOf(b, na, info.RepoID) == head })
	updWireOK := wireOK
	for i, nb := range nodes {
		peer := nb.tr.Peer(na.ID())
		w0, ok0 := quicBytes(peer)
		syscall.Sync()
		t0 = time.Now()
		upd, err := nb.RepoSync(ctx, params, nil)
		megaUpd.add(time.Since(t0))
		if err != nil || !upd.Updated || upd.From != na.ID().String() || headOf(b, nb, info.RepoID) != head {
			b.Fatalf("update sync: %+v %v", upd, err)
		}
		w1, ok1 := quicBytes(peer)
		updWireOK = updWireOK && ok0 && ok1 && nb.tr.Peer(na.ID()) == peer
		megaUpdPack.add(upd.Bytes)
		megaUpdWire.add(int64(w1 - w0))

		syscall.Sync()
		t0 = time.Now()
		git(b, gitClones[i], "fetch", "-q", "origin")
		gitFetch.add(time.Since(t0))
		fetchBytes.add(proxy.take(b))
		if got := git(b, gitClones[i], "rev-parse", "origin/HEAD"); got != head {
			b.Fatalf("git fetch brought %s, want %s", got, head)
		}
	}

	// ---- report ----
	sec := func(s samples[time.Duration]) float64 { return s.median().Seconds() }
	num := func(s samples[int64]) float64 { return float64(s.median()) }
	updBytes := num(megaUpdPack)
	if updWireOK {
		updBytes = num(megaUpdWire)
	}
	b.ReportMetric(sec(megaSync), "mega-sync-s")
	b.ReportMetric(sec(megaClone), "mega-clone-s")
	b.ReportMetric(sec(megaTotal), "mega-total-s")
	b.ReportMetric(num(megaPack), "mega-bytes")
	b.ReportMetric(sec(gitClone), "git-clone-s")
	b.ReportMetric(sec(gitFsck), "git-clone-fsck-s")
	b.ReportMetric(num(gitBytes), "git-clone-bytes")
	b.ReportMetric(sec(megaUpd), "mega-update-s")
	b.ReportMetric(num(megaUpdPack), "mega-update-bytes")
	b.ReportMetric(sec(gitFetch), "git-fetch-s")
	b.ReportMetric(num(fetchBytes), "git-fetch-bytes")
	b.ReportMetric(sec(megaTotal)/sec(gitClone), "clone-ratio")
	b.ReportMetric(sec(megaTotal)/sec(gitFsck), "clone-fsck-ratio")
	b.ReportMetric(sec(megaUpd)/sec(gitFetch), "update-time-ratio")
	b.ReportMetric(updBytes/num(fetchBytes), "update-bytes-ratio")
	if wireOK {
		b.ReportMetric(num(megaWire), "mega-wire-bytes")
		b.ReportMetric(num(megaWire)/num(gitBytes), "clone-bytes-ratio")
	}
	if updWireOK {
		b.ReportMetric(num(megaUpdWire), "mega-update-wire-bytes")
	}
	b.ReportMetric(float64(megaTotal.median().Nanoseconds()), "ns/op")

	// The framework keeps only the first 10 lines a benchmark logs.
	wire := func(ok bool, s samples[int64]) string {
		if !ok {
			return "n/a"
		}
		return strconv.FormatInt(s.median(), 10)
	}
	n := float64(transferRounds)
	var tab strings.Builder
	fmt.Fprintf(&tab, "%d commits, %d files, %d objects, pack %.1f MB (generated in %.1f s, added to A in %.1f s); %d rounds, medians [min-max]\n",
		gen.commits, gen.files, gen.objects, float64(gen.packBytes)/1e6, genTime.Seconds(), addTime.Seconds(), transferRounds)
	fmt.Fprintf(&tab, "%-30s %-20s %10s %10s\n", "", "seconds", "pack B", "wire B")
	fmt.Fprintf(&tab, "%-30s %-20s %10d %10s  CPU/round: git %.2f s, Go %.2f s\n", "mega full sync (B.RepoSync)", megaSync, megaPack.median(), wire(wireOK, megaWire), cpuSync.children/n, cpuSync.self/n)
	fmt.Fprintf(&tab, "%-30s %-20s %10s %10s  CPU/round: git %.2f s, Go %.2f s\n", "mega clone from the replica", megaClone, "", "", cpuClone.children/n, cpuClone.self/n)
	fmt.Fprintf(&tab, "%-30s %-20s %10s %10d\n", "git clone git://", gitClone, "", gitBytes.median())
	fmt.Fprintf(&tab, "%-30s %-20s\n", "git clone git:// fsckObjects", gitFsck)
	fmt.Fprintf(&tab, "%-30s %-20s %10d %10s\n", "mega one-commit update", megaUpd, megaUpdPack.median(), wire(updWireOK, megaUpdWire))
	fmt.Fprintf(&tab, "%-30s %-20s %10s %10d\n", "git fetch git://", gitFetch, "", fetchBytes.median())
	fmt.Fprintf(&tab, "mega/git: clone %.2f (mega sync+clone %.2f s), vs fsck clone %.2f, clone wire bytes %s; update time %.2f, update bytes %.2f",
		sec(megaTotal)/sec(gitClone), sec(megaTotal), sec(megaTotal)/sec(gitFsck),
		func() string {
			if !wireOK {
				return "n/a"
			}
			return fmt.Sprintf("%.2f", num(megaWire)/num(gitBytes))
		}(),
		sec(megaUpd)/sec(gitFetch), updBytes/num(fetchBytes))
	b.Log(tab.String())
}

// samples are the measurements of one quantity, one per round.
type samples[T time.Duration | int64] []T

func (s *samples[T]) add(v T) { *s = append(*s, v) }

// median is the middle value (the lower middle for an even count).
func (s samples[T]) median() T {
	c := slices.Clone(s)
	slices.Sort(c)
	return c[(len(c)-1)/2]
}

// String is "median [min-max]", in seconds for durations.
func (s samples[T]) String() string {
	f := func(v T) string {
		if d, ok := any(v).(time.Duration); ok {
			return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
		}
		return strconv.FormatInt(int64(v), 10)
	}
	return fmt.Sprintf("%s [%s-%s]", f(s.median()), f(slices.Min(s)), f(slices.Max(s)))
}

// ---- the generated repository ----

// Shape of the generated repository. 12 × 8 directories of 21 files make
// 2016 files of 40–250 lines of Go-like text (~10 MB). Each of the 3000
// commits edits 1–6 files of one directory and sometimes one elsewhere
// (a few lines replaced, inserted or deleted each) and sometimes adds a
// file; every 100th gets an annotated tag; a side branch of 30 commits
// forks near the end. That is ~27k objects (3000 commits, 11k trees,
// 13k blobs), a 7 MB pack.
const (
	genTop     = 12
	genSub     = 8
	genFiles   = 21
	genCommits = 3000
	genTagStep = 100
	genBranch  = 30
)

type generated struct {
	commits, files, objects int
	packBytes               int64
	editable                string // a file the update edits
}

var genWords = strings.Fields(`alpha beta cache chunk client codec config conn context cursor data decode
	delta digest dir encode entry error event fetch field file filter flag frame gossip graph handle hash
	header index input item key label layer limit list load lock log map mark merge meta mode node object
	offset option order pack page parse path peer pool proto queue range reader record ref repo request
	result retry route row rule scan schema seed select send session shard sign size slot source span
	state status store stream sync table tag task tick timer token trace tree value version view walk
	watch window worker write`)

// genRepo writes the repository into dir (a working repository, branch
// main checked out) with git fast-import, then packs it into one pack with
// git repack -adf (default window and depth; no bitmaps: repack writes them
// only for bare repositories by default, and MegaEngine's replicas do not
// use them either), and describes it.
func genRepo(tb testing.TB, dir string) generated {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	git(tb, dir, "init", "-q", "-b", "main")
	r := rand.New(rand.NewPCG(20240601, 7))
	word := func() string { return genWords[r.IntN(len(genWords))] }
	title := func() string { s := word(); return strings.ToUpper(s[:1]) + s[1:] }
	line := func() string {
		switch r.IntN(12) {
		case 0:
			return fmt.Sprintf("func (%c *%s%s) %s%s(%s %s) error {", word()[0], title(), title(), title(), title(), word(), word())
		case 1:
			return fmt.Sprintf("\tif err := %s.%s%s(%s, %d); err != nil {", word(), title(), title(), word(), r.IntN(4096))
		case 2:
			return fmt.Sprintf("\t\treturn fmt.Errorf(\"%s %s: %%w\", err)", word(), word())
		case 3, 4:
			return "\t}"
		case 5:
			return fmt.Sprintf("// %s%s %s the %s of a %s, or %s.", title(), title(), word()+"s", word(), word(), word())
		case 6:
			return fmt.Sprintf("\t%s%s := %s.%s(%s[%d:])", word(), title(), word(), title(), word(), r.IntN(64))
		case 7:
			return ""
		case 8:
			return fmt.Sprintf("\tfor _, %s := range %s.%s {", word(), word(), title()+"s")
		case 9:
			return fmt.Sprintf("\t\t%s.%s = append(%s.%s, %s)", word(), title(), word(), title(), word())
		case 10:
			return fmt.Sprintf("\tconst %s%s = %d // %s", word(), title(), r.IntN(1<<20), word())
		default:
			return fmt.Sprintf("\treturn %s%s(%s, %s)", word(), title(), word(), word())
		}
	}
	type file struct {
		path  string
		lines []string
	}
	var files []*file
	dirs := make([][]*file, 0, genTop*genSub)
	newFile := func(d, pkg string, n int) *file {
		// The name ends in words, not in the counter that makes it unique:
		// git's delta search groups objects by a hash of the name's last
		// characters, and "…_17.go" for every file would put unrelated files
		// in one group and hide each file's previous version.
		f := &file{path: fmt.Sprintf("%s/%s%d_%s.go", d, word(), len(files), word())}
		f.lines = append(f.lines, "package "+pkg, "")
		for range n {
			f.lines = append(f.lines, line())
		}
		files = append(files, f)
		return f
	}
	for i := range genTop {
		for j := range genSub {
			top, sub := genWords[i*7%len(genWords)], genWords[(i*genSub+j)*3%len(genWords)]
			d := fmt.Sprintf("%s/%s%d", top, sub, j)
			var fs []*file
			for range genFiles {
				fs = append(fs, newFile(d, sub, 40+r.IntN(210)))
			}
			dirs = append(dirs, fs)
		}
	}

	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
	var errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &errOut, &errOut
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	blob := func(f *file) {
		fmt.Fprintf(w, "M 100644 inline %s\n", f.path)
		data(strings.Join(f.lines, "\n") + "\n")
	}
	when := int64(1_500_000_000)
	person := func() string {
		when += 600 + r.Int64N(20000)
		names := []string{"Ada", "Brian", "Chen", "Dana", "Emeka", "Fatima"}
		n := names[r.IntN(len(names))]
		return fmt.Sprintf("%s Dev <%s@example.org> %d +0000", n, strings.ToLower(n), when)
	}
	mark := 0
	commitHdr := func(ref, msg string) {
		mark++
		fmt.Fprintf(w, "commit %s\nmark :%d\n", ref, mark)
		p := person()
		fmt.Fprintf(w, "author %s\ncommitter %s\n", p, p)
		data(msg)
	}
	edit := func(f *file) {
		for range 1 + r.IntN(3) {
			at := 2 + r.IntN(len(f.lines)-1)
			switch r.IntN(3) {
			case 0:
				if at < len(f.lines) {
					f.lines[at] = line()
					break
				}
				fallthrough
			case 1:
				var add []string
				for range 1 + r.IntN(4) {
					add = append(add, line())
				}
				f.lines = append(f.lines[:at], append(add, f.lines[at:]...)...)
			default:
				if at < len(f.lines) && len(f.lines) > 10 {
					f.lines = append(f.lines[:at], f.lines[at+1:]...)
				}
			}
		}
	}

	commits := 0
	commitHdr("refs/heads/main", "Initial import\n")
	for _, f := range files {
		blob(f)
	}
	commits++
	forkMark := 0
	for i := 1; i < genCommits; i++ {
		d := dirs[r.IntN(len(dirs))]
		msg := fmt.Sprintf("%s: %s the %s %s\n", strings.Split(d[0].path, "/")[1], word(), word(), word())
		if r.IntN(3) == 0 {
			msg += fmt.Sprintf("\nThe %s %s %s when the %s %s.\n", word(), word(), word()+"s", word(), word())
		}
		commitHdr("refs/heads/main", msg)
		var touched []*file // in a fixed order: the output depends only on the seed
		for range 1 + r.IntN(6) {
			touched = append(touched, d[r.IntN(len(d))])
		}
		if r.IntN(3) == 0 {
			touched = append(touched, files[r.IntN(len(files))])
		}
		for i, f := range touched {
			if slices.Contains(touched[:i], f) {
				continue
			}
			edit(f)
			blob(f)
		}
		if r.IntN(20) == 0 {
			blob(newFile(strings.TrimSuffix(filepath.Dir(d[0].path), "/"), "added", 20+r.IntN(100)))
		}
		commits++
		if i%genTagStep == 0 {
			p := person()
			fmt.Fprintf(w, "tag v0.%d.0\nfrom :%d\ntagger %s\n", i/genTagStep, mark, p)
			data(fmt.Sprintf("Release 0.%d.0\n", i/genTagStep))
		}
		if i == genCommits-200 {
			forkMark = mark
		}
	}
	// A maintenance branch forked 200 commits back, editing its own notes.
	fmt.Fprintf(w, "reset refs/heads/stable\nfrom :%d\n\n", forkMark)
	notes := &file{path: "docs/STABLE.md", lines: []string{"# Stable branch notes", ""}}
	for i := range genBranch {
		commitHdr("refs/heads/stable", fmt.Sprintf("stable: note %d\n", i))
		notes.lines = append(notes.lines, fmt.Sprintf("- %s %s %s", word(), word(), word()))
		blob(notes)
		commits++
	}
	fmt.Fprintf(w, "done\n")
	if err := w.Flush(); err != nil {
		tb.Fatalf("feeding git fast-import: %v\n%s", err, errOut.String())
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, errOut.String())
	}
	// fast-import's own deltas are poor (~2.5 KB per edited version of a
	// 6 KB file: a pack of 27 MB), and git gc would reuse them: recompute
	// them all.
	git(tb, dir, "repack", "-adf", "--quiet")
	git(tb, dir, "pack-refs", "--all")
	git(tb, dir, "reset", "-q", "--hard")

	g := generated{commits: commits, files: len(files), editable: files[0].path}
	for _, l := range strings.Split(git(tb, dir, "count-objects", "-v"), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "count", "in-pack":
			g.objects += int(n)
		case "size-pack":
			g.packBytes = n * 1024
		}
	}
	return g
}

// ---- git daemon ----

func needGitDaemon(tb testing.TB) {
	tb.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		tb.Skipf("git is not available: %v", err)
	}
	if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "git-daemon")); err != nil {
		tb.Skipf("git daemon is not installed (%v): the benchmark compares with git clone git://", err)
	}
}

// startGitDaemon serves the repositories under base on a free loopback
// port until the benchmark ends, and returns host:port once it accepts
// connections.
func startGitDaemon(tb testing.TB, base string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+base,
		"--listen=127.0.0.1", "--port="+strconv.Itoa(port), base)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null")
	var errOut strings.Builder
	cmd.Stderr = &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // it forks one child per connection
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			tb.Fatalf("git daemon exited: %s", errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("git daemon does not accept connections on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingProxy relays TCP connections to target and counts the bytes
// relayed, both ways.
type countingProxy struct {
	ln     net.Listener
	target string
	bytes  atomic.Int64
	conns  sync.WaitGroup
}

func newCountingProxy(tb testing.TB, target string) *countingProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &countingProxy{ln: ln, target: target}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			go p.relay(c)
		}
	}()
	return p
}

func (p *countingProxy) addr() string { return p.ln.Addr().String() }

func (p *countingProxy) relay(c net.Conn) {
	defer p.conns.Done()
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var both sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer both.Done()
		io.Copy(countingWriter{dst, &p.bytes}, src)
		dst.(*net.TCPConn).CloseWrite()
	}
	both.Add(2)
	go pipe(s, c)
	go pipe(c, s)
	both.Wait()
}

// take waits until the connections relayed so far have ended and returns
// the bytes they moved since the last take.
func (p *countingProxy) take(tb testing.TB) int64 {
	tb.Helper()
	done := make(chan struct{})
	go func() { p.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		tb.Fatal("relayed connections did not end")
	}
	return p.bytes.Swap(0)
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// ---- measuring MegaEngine ----

// quicBytes is the QUIC payload sent plus received so far on p's
// connection, comparable with the TCP payload countingProxy counts.
func quicBytes(p *transport.Peer) (n uint64, ok bool) {
	if p == nil {
		return 0, false
	}
	return p.BytesTransferred(), true
}

// cpuTimes is the CPU time (user+system, seconds) of this process and of
// its finished children (the git processes both nodes ran).
type cpuUse struct{ self, children float64 }

func (c cpuUse) minus(d cpuUse) cpuUse { return cpuUse{c.self - d.self, c.children - d.children} }
func (c cpuUse) plus(d cpuUse) cpuUse  { return cpuUse{c.self + d.self, c.children + d.children} }

func cpuTimes() cpuUse {
	sec := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
	var s, c syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	return cpuUse{self: sec(s.Utime) + sec(s.Stime), children: sec(c.Utime) + sec(c.Stime)}
}
