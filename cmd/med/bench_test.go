package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Idle measurement windows. Fixed, not scaled by b.N: what is measured is a
// rate over wall-clock time, not the cost of an operation.
const (
	idleSettle = 2 * time.Second  // after the peer connected, before measuring
	idleWindow = 10 * time.Second // the measured interval
)

// BenchmarkIdleDaemon measures what a real, idle med costs: it starts two
// daemons on loopback, waits until they are peers, lets them settle for 2 s,
// then samples the first one's resident memory (VmRSS, every second) and its
// CPU time (cpuTime) over a 10 s window. It reports
// rss_MB (the mean of the samples), rss_max_MB and cpu_% (of one core).
//
// The measurement takes ~13 s whatever b.N is, so it is made once per call:
// with the default -benchtime the framework calls it with b.N = 1 only; a
// larger b.N (-benchtime=Nx) does not repeat it (use -count for that).
// ns/op would only be the window length, so it is reported as 0.
func BenchmarkIdleDaemon(b *testing.B) {
	needBinaries(b)
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		b.Skip("no /proc/<pid>/schedstat: cannot measure a process's CPU time here")
	}
	if raceEnabled {
		b.Log("note: the daemons are race-enabled builds; memory and CPU are several times the normal figures")
	}
	r1, r2 := tempRoot(b), tempRoot(b)
	// Default flags (idle timeout, keep-alive, gossip ticks) apart from the
	// addresses: what an idle node really does.
	node1 := startProc(b, "idle1", medBin, "--root", r1, "--listen", "127.0.0.1:0", "--alias", "idle1")
	addr1 := node1.stdoutField(b, "address")
	did1 := strings.SplitN(addr1, "@", 2)[0]
	node2 := startProc(b, "idle2", medBin, "--root", r2, "--listen", "127.0.0.1:0", "--alias", "idle2", "--bootstrap", addr1)
	did2 := node2.stdoutField(b, "did")
	waitPeer(b, r1, did2, true, 20*time.Second)
	waitPeer(b, r2, did1, true, 20*time.Second)
	pid := node1.cmd.Process.Pid

	b.ResetTimer()
	time.Sleep(idleSettle) // not synchronisation: the daemon is meant to be idle now
	cpu0, err := cpuTime(pid)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var rssSum, rssMax float64
	var samples int
	for tick := time.NewTicker(time.Second); ; {
		rss, err := rssKB(pid)
		if err != nil {
			b.Fatal(err)
		}
		rssSum += rss
		rssMax = max(rssMax, rss)
		samples++
		if time.Since(start) >= idleWindow {
			tick.Stop()
			break
		}
		<-tick.C
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	// Still peers: the window measured a connected node, not a lonely one.
	waitPeer(b, r1, did2, true, 5*time.Second)
	if node1.exited() || node2.exited() {
		b.Fatal("a daemon exited during the measurement")
	}
	cpuSeconds := (cpu1 - cpu0).Seconds()
	b.ReportMetric(rssSum/float64(samples)/1024, "rss_MB")
	b.ReportMetric(rssMax/1024, "rss_max_MB")
	b.ReportMetric(100*cpuSeconds/elapsed.Seconds(), "cpu_%")
	b.ReportMetric(0, "ns/op")
}

// rssKB reads VmRSS from /proc/<pid>/status, in KiB.
func rssKB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS %q: %w", v, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// cpuTime is the CPU time pid has used: its threads' run time (the first
// field of /proc/<pid>/task/<tid>/schedstat, in ns) and that of the
// children it waited for (cutime+cstime of /proc/<pid>/stat: git, say).
// The process's own utime+stime count 10 ms ticks, too coarse for an idle
// daemon (one tick in a 10 s window is 0.1 %). A thread that exits takes
// its time with it; the Go runtime keeps its threads.
func cpuTime(pid int) (time.Duration, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("no /proc/%d/task/*/schedstat (%v)", pid, err)
	}
	var sum time.Duration
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		fields := strings.Fields(string(raw))
		if len(fields) == 0 {
			return 0, fmt.Errorf("empty %s", f)
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %s: %w", f, err)
		}
		sum += time.Duration(ns)
	}
	children, err := childTicks(pid)
	return sum + children*time.Second/userHZ, err
}

// userHZ is the unit of the times in /proc/<pid>/stat. Linux exports them
// in USER_HZ, which is 100 on every architecture Go supports
// (sysconf(_SC_CLK_TCK) returns the same constant).
const userHZ = 100

// childTicks reads cutime+cstime from /proc/<pid>/stat, in USER_HZ ticks.
func childTicks(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Field 2, the command name, is in parentheses and may hold spaces:
	// count fields from after its closing parenthesis, where field 3 starts.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	const cutime, cstime = 16 - 3, 17 - 3 // field numbers from proc(5), shifted
	if len(f) <= cstime {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[cutime], 10, 64)
	st, err2 := strconv.ParseInt(f[cstime], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat: %q %q", pid, f[cutime], f[cstime])
	}
	return time.Duration(u + st), nil
}
