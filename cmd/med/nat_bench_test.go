package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchRepo makes a working repository of one 1 MiB random file.
func benchRepo(b *testing.B, i int) string {
	dir := filepath.Join(b.TempDir(), fmt.Sprintf("r%d", i))
	os.MkdirAll(dir, 0o755)
	gitIn(b, dir, "init", "-q", "-b", "main")
	addRandomFile(b, dir, "blob", 1<<20, uint64(i)+1)
	return dir
}

// firstClone measures from repo add on root `from` until `to` holds it.
func firstClone(b *testing.B, from, to string, i int) time.Duration {
	src := benchRepo(b, i)
	began := time.Now()
	var added repoJSON
	if err := mecliJSON(b, &added, "--root", from, "repo", "add", "--path", src); err != nil {
		b.Fatal(err)
	}
	waitHead(b, to, added.RepoID, gitIn(b, src, "rev-parse", "main"))
	return time.Since(began)
}

// BenchmarkFirstCloneRelayVsPublic: a 1 MiB repository shared behind NAT 1
// reaches the node behind NAT 2 through the relay (two hops, store and
// forward), against one shared by a public node reaching another public
// node directly. Reports both and their ratio.
func BenchmarkFirstCloneRelayVsPublic(b *testing.B) {
	lab := newNATLab(b)
	n := startNATNodes(b, lab)
	p1, p2 := tempRoot(b), tempRoot(b)
	did1, did2 := authInit(b, p1), authInit(b, p2)
	lab.med(b, "pub", p1, "--listen", relayIP+":9002")
	lab.med(b, "pub", p2, "--listen", relayIP+":9003", "--bootstrap", fmt.Sprintf("%s@%s:9002", did1, relayIP))
	waitPeer(b, p1, did2, true, 15*time.Second)
	var relayed, public time.Duration
	b.ResetTimer()
	for i := range b.N {
		relayed += firstClone(b, n.aRoot, n.bRoot, 2*i)
		public += firstClone(b, p1, p2, 2*i+1)
	}
	b.ReportMetric(float64(relayed.Milliseconds())/float64(b.N), "ms/relayed-clone")
	b.ReportMetric(float64(public.Milliseconds())/float64(b.N), "ms/public-clone")
	b.ReportMetric(float64(relayed)/float64(public), "ratio")
}

// BenchmarkHolePunch: the time node connect <did> takes to a direct
// connection between the nodes behind the two NATs (a fresh lab each time).
func BenchmarkHolePunch(b *testing.B) {
	var total time.Duration
	for range b.N {
		b.StopTimer()
		lab := newNATLab(b)
		n := startNATNodes(b, lab)
		b.StartTimer()
		p, took := connectByID(b, n.aRoot, n.bDID)
		if p.Path != "direct" {
			b.Fatalf("path %s", p.Path)
		}
		total += took
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/connect")
}
