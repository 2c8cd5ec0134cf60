package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

var small = []string{"--nodes", "120", "--degree", "6", "--repos", "120", "--subscribe", "3",
	"--fail", "0.2", "--loss", "0.01", "--steady", "3m", "--announce", "10", "--seed", "7", "--json"}

func simulate(t *testing.T, args ...string) (result, string) {
	t.Helper()
	var out, errs bytes.Buffer
	if err := run(args, &out, &errs); err != nil {
		t.Fatalf("run: %v (%s)", err, errs.String())
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	return r, out.String()
}

// The simulator is a pure function of its flags: same seed, same bytes.
func TestDeterministicForASeed(t *testing.T) {
	_, first := simulate(t, small...)
	_, second := simulate(t, small...)
	if first != second {
		t.Fatalf("two runs with one seed differ:\n%s\n%s", first, second)
	}
	_, other := simulate(t, append(small, "--seed", "8")...)
	if other == first {
		t.Fatal("another seed gave the same run")
	}
}

// The nodes of one window run on several goroutines; how many does not
// change a byte of the output.
func TestSameOutputForAnyNumberOfWorkers(t *testing.T) {
	_, one := simulate(t, append(small, "--workers", "1")...)
	for _, w := range []string{"2", "5"} {
		if _, out := simulate(t, append(small, "--workers", w)...); out != one {
			t.Fatalf("%s workers gave another run than one:\n%s\n%s", w, out, one)
		}
	}
}

// A small network meets the goals: everything delivered to live
// followers despite crashes and loss, fast, in few hops, about one copy
// per node once the trees have formed (20 simulated minutes), nothing for
// nodes that do not follow the repository.
func TestSmallNetworkMeetsTheGoals(t *testing.T) {
	r, _ := simulate(t, append(small, "--steady", "20m")...)
	if r.Nodes != 120 || r.Failed != 24 || r.Announcements != 10 || r.ShouldReceive == 0 {
		t.Fatalf("unexpected run: %+v", r)
	}
	if r.Delivered != 1 {
		t.Errorf("delivered %.3f, want 1", r.Delivered)
	}
	if r.CopiesPerNode > 1.5 {
		t.Errorf("%.2f copies per node, want at most 1.5", r.CopiesPerNode)
	}
	if r.NonsubscriberCopies > 0.5 {
		t.Errorf("%.2f copies per announcement to nodes that do not follow it", r.NonsubscriberCopies)
	}
	if r.P99ms > 2000 || float64(r.LastHop) > 2*math.Log2(float64(r.Nodes)) {
		t.Errorf("p99 %.0f ms, last hop %d: want at most 2 s and 2·log2(N)", r.P99ms, r.LastHop)
	}
	if r.SteadyBytesPerNodeS <= 0 || r.SteadyBytesByType["Subscribe"] <= 0 {
		t.Errorf("no steady traffic counted: %+v", r)
	}
}

func TestTextSummary(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--nodes", "30", "--repos", "30", "--steady", "1m", "--announce", "3"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"delivered", "copies per node", "steady traffic"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--nodes", "1"}, &out, &out); err == nil {
		t.Fatal("one node accepted")
	}
}

// The simulated dialer keeps every live follower linked to Mesh live
// followers of each repository it follows (or to all of them), also
// after crashes and churn: the overlay a repository's messages travel on
// stays connected.
func TestMeshIsKept(t *testing.T) {
	p := params{Nodes: 120, Degree: 6, Mesh: 4, Fail: 0.2, Loss: 0.01, Repos: 40, Subscribe: 3, Seed: 3,
		Latency: 50 * time.Millisecond, Steady: 10 * time.Minute, Churn: 0.5, Downtime: time.Minute, Announce: 5}
	s, err := newScenario(p)
	if err != nil {
		t.Fatal(err)
	}
	s.run()
	for r, followers := range s.subs {
		var live []int32
		for _, i := range followers {
			if s.net.nodes[i].up {
				live = append(live, i)
			}
		}
		for _, i := range live {
			linked := 0
			for _, j := range live {
				if s.net.nodes[i].links[j] {
					linked++
				}
			}
			if want := min(p.Mesh, len(live)-1); linked < want {
				t.Fatalf("node %d has %d links to the %d other live followers of repository %d, want %d", i, linked, len(live)-1, r, want)
			}
		}
	}
}
