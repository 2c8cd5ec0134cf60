package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// freeUDPPorts finds n loopback UDP ports free now, so that a node
// restarted after a kill listens where the others know it.
func freeUDPPorts(tb testing.TB, n int) []string {
	tb.Helper()
	var out []string
	var conns []net.PacketConn
	for range n {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		out = append(out, c.LocalAddr().String())
	}
	for _, c := range conns {
		c.Close()
	}
	return out
}

type chaosNode struct {
	root, did, addr string
	p               *proc
}

func (c *chaosNode) start(t *testing.T, name string, boot []string) {
	t.Helper()
	args := []string{"--root", c.root, "--listen", c.addr, "--alias", name, "--idle-timeout", idleTimeout.String()}
	for _, b := range boot {
		args = append(args, "--bootstrap", b)
	}
	c.p = startProc(t, name, medBin, args...)
	c.p.stdoutField(t, "address")
}

// Five real daemons replicate three repositories while the test kills
// random ones with SIGKILL (in the middle of whatever they do) and starts
// them again, and commits keep coming. In the end every node holds the
// same signed refs, equal to the working repositories, every replica
// passes git fsck, and no temporary file is left.
func TestChaosKillAndRestart(t *testing.T) {
	needBinaries(t)
	const nodes, repos, kills, seed = 5, 3, 12, 20261201
	rnd := rand.New(rand.NewPCG(seed, seed))
	addrs := freeUDPPorts(t, nodes)
	ns := make([]*chaosNode, nodes)
	var boot []string
	for i := range ns {
		ns[i] = &chaosNode{root: tempRoot(t), addr: addrs[i]}
		ns[i].did = authInit(t, ns[i].root)
		boot = append(boot, ns[i].did+"@"+addrs[i])
	}
	begin := time.Now()
	for i, n := range ns {
		n.start(t, fmt.Sprintf("node%d", i), boot[:i])
	}
	srcs, ids := make([]string, repos), make([]string, repos)
	for r := range repos {
		srcs[r] = newSourceRepo(t)
		addRandomFile(t, srcs[r], "seed.bin", 256<<10, uint64(r))
		var added repoJSON
		if err := mecliJSON(t, &added, "--root", ns[r].root, "repo", "add", "--path", srcs[r]); err != nil {
			t.Fatal(err)
		}
		ids[r] = added.RepoID
	}
	for k := range kills {
		victim := rnd.IntN(nodes)
		r := rnd.IntN(repos)
		addRandomFile(t, srcs[r], fmt.Sprintf("f%d.bin", k), 1<<20, uint64(100+k))
		ns[victim].p.signal(t, os.Kill)
		ns[victim].p.wait(t, 10*time.Second)
		others := make([]string, 0, nodes-1)
		for i, b := range boot {
			if i != victim {
				others = append(others, b)
			}
		}
		ns[victim].start(t, fmt.Sprintf("node%d", victim), others)
	}
	chaos := time.Since(begin)

	for r := range repos {
		owner := ns[r].did
		want := refsOf(t, srcs[r], false)
		for i, n := range ns {
			testutil.WaitForState(t, fmt.Sprintf("node%d to hold repo %d as signed by its owner", i, r), 45*time.Second, func() (bool, string) {
				got, seq, err := namespaceRefs(t, n.root, ids[r], owner)
				if err != nil {
					return false, err.Error()
				}
				st, _ := repoStatus(t, n.root, ids[r])
				return got == want, fmt.Sprintf("seq %d %s %q: %q", seq, st.Replica, st.LastError, got)
			})
		}
	}
	t.Logf("%d nodes, %d repositories, %d kills (seed %d): chaos %v, converged %v after it",
		nodes, repos, kills, seed, chaos.Round(time.Millisecond), (time.Since(begin) - chaos).Round(time.Millisecond))
	for i, n := range ns {
		for r := range repos {
			// The background repack may be rolling packs up (it starts once
			// no pack came in for a while: about now); git fsck then sees
			// a pack disappear under it. A real fault stays.
			dir := replicaDir(n.root, ids[r])
			testutil.WaitForState(t, fmt.Sprintf("git fsck of repo %d on node%d", r, i), 20*time.Second, func() (bool, string) {
				out, err := exec.Command("git", "-C", dir, "fsck", "--no-progress", "--no-dangling").CombinedOutput()
				return err == nil, string(out)
			})
		}
		// A fetch may still run (an owner restarted last signs again): its
		// files go when it ends; a kill's leftovers would stay.
		testutil.WaitForState(t, fmt.Sprintf("node%d to hold no temporary files", i), 10*time.Second, func() (bool, string) {
			left, _ := temporaries(t, n.root)
			return len(left) == 0, strings.Join(left, " ")
		})
	}
}
