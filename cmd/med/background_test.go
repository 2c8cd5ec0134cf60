package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// procStat returns the fields of /proc/PID/stat after the command name:
// state, ppid, pgrp, session, … (nil if there is no such process).
func procStat(pid int) []string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	_, rest, _ := strings.Cut(string(stat[strings.LastIndexByte(string(stat), ')'):]), " ")
	return strings.Fields(rest)
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return syscall.Kill(pid, 0) == nil // no procfs
	}
	st := procStat(pid)
	return len(st) > 0 && st[0] != "Z"
}

// mecli node start --detach returns once the daemon answers, leaving it in
// the background in a session of its own with its output in med.log;
// mecli node stop stops it and returns once it has exited.
func TestDetachAndStop(t *testing.T) {
	needBinaries(t)
	root := tempRoot(t)
	r := runCmd(t, mecliBin, "--root", root, "--json", "node", "start", "--detach", "--addr", "127.0.0.1:0")
	if r.code != 0 {
		t.Fatalf("node start --detach: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var d struct {
		DID string `json:"did"`
		PID int    `json:"pid"`
		Log string `json:"log"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.PID <= 0 || !strings.HasPrefix(d.DID, "did:key:") {
		t.Fatalf("node start --detach printed %q (%v)", r.stdout, err)
	}
	t.Cleanup(func() {
		if running(d.PID) {
			syscall.Kill(d.PID, syscall.SIGKILL)
		}
	})
	if st := procStat(d.PID); len(st) > 3 && st[3] != strconv.Itoa(d.PID) {
		t.Errorf("the daemon (pid %d) is in session %s, not a session of its own", d.PID, st[3])
	}

	var info infoJSON
	if err := mecliJSON(t, &info, "--root", root, "node", "status"); err != nil || info.DID != d.DID {
		t.Fatalf("node status after --detach: %+v, %v; want did %s", info, err, d.DID)
	}
	if again := runCmd(t, mecliBin, "--root", root, "node", "start", "--detach"); again.code != 1 || !strings.Contains(again.stderr, "already running") {
		t.Errorf("a second node start --detach: exit %d, stderr %q", again.code, again.stderr)
	}

	stop := runCmd(t, mecliBin, "--root", root, "node", "stop")
	if stop.code != 0 || !strings.Contains(stop.stdout, strconv.Itoa(d.PID)) {
		t.Fatalf("node stop: exit %d\nstdout: %s\nstderr: %s", stop.code, stop.stdout, stop.stderr)
	}
	if running(d.PID) {
		t.Errorf("node stop returned while the daemon (pid %d) still runs", d.PID)
	}
	if _, err := os.Lstat(filepath.Join(root, "med.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("node stop returned and the socket is still there: %v", err)
	}
	logText, err := os.ReadFile(filepath.Join(root, "med.log"))
	if err != nil || d.Log != filepath.Join(root, "med.log") || !strings.Contains(string(logText), "node running") ||
		!strings.Contains(string(logText), "shutting down") {
		t.Errorf("med.log (%s, %v) lacks the daemon's start and stop:\n%s", d.Log, err, logText)
	}

	again := runCmd(t, mecliBin, "--root", root, "node", "stop")
	if again.code != 1 || strings.Count(again.stderr, "\n") != 1 || !strings.Contains(again.stderr, "no daemon running") {
		t.Errorf("node stop with no daemon: exit %d, stderr %q", again.code, again.stderr)
	}
}

// A detached daemon that cannot start makes node start fail with the end of
// its log.
func TestDetachFailureShowsTheLog(t *testing.T) {
	needBinaries(t)
	root := tempRoot(t)
	writeConfig(t, root, `{"colour": "blue"}`)
	r := runCmd(t, mecliBin, "--root", root, "node", "start", "--detach")
	if r.code != 1 || !strings.Contains(r.stderr, "med exited") || !strings.Contains(r.stderr, `unknown key "colour"`) {
		t.Fatalf("node start --detach with a bad config: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
