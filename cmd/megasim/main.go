// Command megasim runs the real gossip engine (real signatures, real
// verification) on a simulated network with a virtual clock: a
// discrete-event loop that runs the nodes of each window of the shortest
// link latency on every core, in an order that makes a run a pure
// function of its flags and seed, whatever the number of cores. It reports delivery, copies per node, hops, latency and
// the steady-state gossip traffic per node.
//
//	megasim --nodes 10000 --degree 8 --fail 0.2 --loss 0.01 --repos 10000 --subscribe 3 --seed 1 --json
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"

	flag "github.com/spf13/pflag"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// The heap is mostly long-lived routing state (every node's
		// table); collecting it half as often saves a tenth of the CPU
		// for half again the memory (3.4 GB at 10 000 nodes). More
		// costs more in page faults than it saves.
		debug.SetGCPercent(200)
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "megasim:", err)
		os.Exit(2)
	}
}

// run parses args, simulates, and writes the result to stdout.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("megasim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p params
	fs.IntVar(&p.Nodes, "nodes", 1000, "number of nodes")
	fs.IntVar(&p.Degree, "degree", 8, "mean number of random links per node")
	fs.IntVar(&p.Mesh, "mesh", 4, "links to other followers of each followed repository a node keeps (counting those others made), replaced when lost")
	fs.Float64Var(&p.Fail, "fail", 0, "fraction of nodes that crash before the measured announcements")
	fs.Float64Var(&p.Loss, "loss", 0, "datagram loss probability per send")
	fs.IntVar(&p.Repos, "repos", 1000, "number of repositories")
	fs.IntVar(&p.Subscribe, "subscribe", 3, "repositories each node follows")
	fs.Uint64Var(&p.Seed, "seed", 1, "random seed: same seed, same output")
	fs.DurationVar(&p.Latency, "latency", 50*time.Millisecond, "mean one-way link latency (each link ±20 %)")
	fs.DurationVar(&p.Steady, "steady", time.Hour, "length of the measured steady-state window")
	fs.Float64Var(&p.Churn, "churn", 0.1, "fraction of nodes that leave and come back per hour")
	fs.DurationVar(&p.Downtime, "downtime", 5*time.Minute, "how long a churned node stays away")
	fs.IntVar(&p.Announce, "announce", 20, "measured repository announcements")
	fs.IntVar(&p.Workers, "workers", 0, "goroutines running the nodes (0: one per core); the output is the same for any number")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end of the run to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	s, err := newScenario(p)
	if err != nil {
		return err
	}
	r := s.run()
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	summary(stdout, p, r, time.Since(start))
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func summary(w io.Writer, p params, r result, took time.Duration) {
	fmt.Fprintf(w, "megasim: %d nodes (degree %d, mesh %d), %d repos, %d followed each, seed %d\n",
		r.Nodes, p.Degree, p.Mesh, p.Repos, p.Subscribe, p.Seed)
	fmt.Fprintf(w, "  measured: %d announcements, %d nodes crashed, loss %.3g\n", r.Announcements, r.Failed, p.Loss)
	fmt.Fprintf(w, "  delivered            %.4f of %d live followers\n", r.Delivered, r.ShouldReceive)
	fmt.Fprintf(w, "  copies per node      %.3f\n", r.CopiesPerNode)
	fmt.Fprintf(w, "  ihave per node       %.3f\n", r.IHavePerNode)
	fmt.Fprintf(w, "  non-follower copies  %.3f per announcement\n", r.NonsubscriberCopies)
	fmt.Fprintf(w, "  last hop             %d\n", r.LastHop)
	fmt.Fprintf(w, "  latency p50 / p99    %.0f / %.0f ms\n", r.P50ms, r.P99ms)
	fmt.Fprintf(w, "  steady traffic       %.1f bytes/node/s (%.3f msgs/node/s) over %.0f s\n",
		r.SteadyBytesPerNodeS, r.SteadyMsgsPerNodeS, r.SteadyWindowS)
	for typ, b := range r.SteadyBytesByType {
		fmt.Fprintf(w, "    %-22s %.1f bytes/node/s\n", typ, b)
	}
	fmt.Fprintf(w, "  simulated in %v\n", took.Round(time.Millisecond))
}
