package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// natInfo is the part of node.info the NAT tests read.
type natInfo struct {
	Addresses    []string `json:"addresses"`
	Reachability string   `json:"reachability"`
}

// natNodes runs a relay on the public segment and nodes a and b behind
// their NATs, bootstrapped from the relay.
type natNodes struct {
	lab                 *natLab
	relay               *proc
	rRoot, aRoot, bRoot string
	rDID, aDID, bDID    string
}

func startNATNodes(t testing.TB, lab *natLab) *natNodes {
	n := &natNodes{lab: lab, rRoot: tempRoot(t), aRoot: tempRoot(t), bRoot: tempRoot(t)}
	n.rDID, n.aDID, n.bDID = authInit(t, n.rRoot), authInit(t, n.aRoot), authInit(t, n.bRoot)
	n.relay = lab.med(t, "pub", n.rRoot, "--relay", "--listen", relayIP+":9000")
	n.relay.stdoutField(t, "address")
	boot := fmt.Sprintf("%s@%s:9000", n.rDID, relayIP)
	lab.med(t, "a", n.aRoot, "--listen", "0.0.0.0:9000", "--bootstrap", boot)
	lab.med(t, "b", n.bRoot, "--listen", "0.0.0.0:9000", "--bootstrap", boot)
	waitPeer(t, n.rRoot, n.aDID, true, 15*time.Second)
	waitPeer(t, n.rRoot, n.bDID, true, 15*time.Second)
	return n
}

// A relay on the public segment and one node behind each of two NATs:
// the nodes learn they are unreachable and announce no address; b
// replicates and clones a's repository through the relay, and gets a's
// next commit; after the relay restarts, both reconnect.
func TestRelayBetweenNATs(t *testing.T) {
	lab := newNATLab(t)
	n := startNATNodes(t, lab)

	for _, root := range []string{n.aRoot, n.bRoot} {
		testutil.WaitForState(t, root+" to find itself unreachable", 20*time.Second, func() (bool, string) {
			var info natInfo
			err := mecliJSON(t, &info, "--root", root, "node", "status")
			return err == nil && info.Reachability == "unreachable" && len(info.Addresses) == 0, fmt.Sprintf("%+v %v", info, err)
		})
	}

	src := newSourceRepo(t)
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", n.aRoot, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	head := gitIn(t, src, "rev-parse", "main")
	waitHead(t, n.bRoot, added.RepoID, head)
	clone := t.TempDir() + "/clone"
	if res := runCmd(t, mecliBin, "--root", n.bRoot, "repo", "clone", "--repo-id", added.RepoID, "--output", clone); res.code != 0 {
		t.Fatalf("repo clone behind NAT: %+v", res)
	}
	if got := gitIn(t, clone, "rev-parse", "HEAD"); got != head {
		t.Fatalf("clone HEAD %s, want %s", got, head)
	}
	head = commitFile(t, src, "c.txt", "c\n", "add c.txt")
	waitHead(t, n.bRoot, added.RepoID, head)

	n.relay.signal(t, syscall.SIGTERM)
	if code := n.relay.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("relay exit %d", code)
	}
	n.relay = lab.med(t, "pub", n.rRoot, "--relay", "--listen", relayIP+":9000")
	waitPeer(t, n.aRoot, n.rDID, true, 30*time.Second)
	waitPeer(t, n.bRoot, n.rDID, true, 30*time.Second)
}

// waitHead waits until root's replica of id has head.
func waitHead(t testing.TB, root, id, head string) {
	t.Helper()
	testutil.WaitForState(t, root+" to replicate "+head, 30*time.Second, func() (bool, string) {
		r, ok, why := repoOn(t, root, id)
		return ok && r.Head == head, why + " head " + r.Head
	})
}

// peerPath is the part of node.peers' elements the NAT tests read.
type peerPath struct {
	DID     string `json:"did"`
	Path    string `json:"path"`
	Address string `json:"address"`
}

// connectByID runs mecli node connect <did> on root and returns the path
// and how long it took.
func connectByID(t testing.TB, root, did string) (peerPath, time.Duration) {
	t.Helper()
	began := time.Now()
	var p peerPath
	if err := mecliJSON(t, &p, "--root", root, "node", "connect", did); err != nil {
		t.Fatal(err)
	}
	return p, time.Since(began)
}

// Behind two NATs that map endpoint-independently, node connect <did>
// asks the relay to introduce the nodes and they punch a hole: a direct
// connection between the NATs' public addresses.
func TestHolePunchThroughRelay(t *testing.T) {
	lab := newNATLab(t)
	n := startNATNodes(t, lab)
	p, took := connectByID(t, n.aRoot, n.bDID)
	if p.Path != "direct" || p.Address != "198.18.0.12:9000" {
		t.Fatalf("node connect: %+v, want a direct connection to b's NAT 198.18.0.12:9000", p)
	}
	t.Logf("direct connection after node connect in %v", took)
	waitPeer(t, n.bRoot, n.aDID, true, 10*time.Second)
}

// With hole punching blocked at one NAT, node connect <did> falls back to
// a relayed connection, and replication works over it.
func TestRelayedFallback(t *testing.T) {
	lab := newNATLab(t)
	lab.blockPunching(t, 2)
	n := startNATNodes(t, lab)
	p, took := connectByID(t, n.aRoot, n.bDID)
	if p.Path != "relayed" {
		t.Fatalf("node connect with punching blocked: %+v, want relayed", p)
	}
	t.Logf("relayed connection after node connect in %v", took)
	src := newSourceRepo(t)
	var added repoJSON
	if err := mecliJSON(t, &added, "--root", n.aRoot, "repo", "add", "--path", src); err != nil {
		t.Fatal(err)
	}
	waitHead(t, n.bRoot, added.RepoID, gitIn(t, src, "rev-parse", "main"))
}
