package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/diskspace"
	"github.com/megaengine/megaengine/internal/testutil"
)

// mountTmpfs mounts a tmpfs of size bytes and returns its directory; the
// test is skipped when that is not possible (not root, no mount).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem to fill needs root")
	}
	dir := tempRoot(t)
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("mounting a tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill appends to path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for {
		if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// leaveFree shrinks path until its filesystem has want bytes free.
func leaveFree(t *testing.T, path string, want uint64) {
	t.Helper()
	free, _, err := diskspace.Free(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || free > want || uint64(st.Size()) < want-free {
		t.Fatalf("cannot leave %d bytes free: %d free, filler %v, %v", want, free, st, err)
	}
	if err := os.Truncate(path, st.Size()-int64(want-free)); err != nil {
		t.Fatal(err)
	}
}

// noCrash checks that a med run ended with want and without a Go crash.
func noCrash(t *testing.T, p *proc, want int) {
	t.Helper()
	if code := p.wait(t, 30*time.Second); code != want {
		t.Fatalf("%s exited with %d, want %d; stderr:\n%s", p.name, code, want, p.stderr.String())
	}
	for _, bad := range []string{"fatal error", "goroutine ", "panic:", "SIGBUS"} {
		if strings.Contains(p.stderr.String(), bad) {
			t.Fatalf("%s crashed (%q in stderr):\n%s", p.name, bad, p.stderr.String())
		}
	}
}

// waitLog waits for a line of p's stderr containing all of parts.
func waitLog(t *testing.T, p *proc, parts ...string) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%s to log %q", p.name, parts), 20*time.Second, func() bool {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			all := true
			for _, s := range parts {
				all = all && strings.Contains(line, s)
			}
			if all {
				return true
			}
		}
		return false
	})
}

func knows(t *testing.T, root, did string) bool {
	var nodes []nodeJSON
	if err := mecliJSON(t, &nodes, "--root", root, "node", "list"); err != nil {
		t.Fatal(err)
	}
	_, ok := find(nodes, did)
	return ok
}

// TestFullDisk runs med on a small filesystem that fills up: it refuses
// announcements instead of faulting in Badger, stops cleanly, refuses to
// start with one clear line while there is no room even to open its
// database, starts (refusing new data) with a little room, and takes
// announcements again once space is freed.
func TestFullDisk(t *testing.T) {
	needBinaries(t)
	mnt := mountTmpfs(t, 128<<20)
	root, filler := filepath.Join(mnt, "node"), filepath.Join(mnt, "filler")
	rootB := tempRoot(t)
	victim := func(name string) *proc {
		return startNode1(t, root, name, "--log-format", "json", "--min-free", "48MiB", "--target-peers", "0")
	}

	// 1. A running node; the disk fills up under it.
	v := victim("victim")
	addr := v.stdoutField(t, "address")
	if st, err := os.Stat(filepath.Join(root, diskspace.ReserveName)); err != nil || st.Size() != diskspace.ReserveSize {
		t.Fatalf("reserve: %v, %v", st, err)
	}
	fill(t, filler)
	waitLog(t, v, "disk space low: refusing")

	// 2. Another node's announcements are refused, not stored.
	b := startNode1(t, rootB, "other", "--bootstrap", addr)
	didB := b.stdoutField(t, "did")
	waitLog(t, v, "storing an announcement failed", "disk space low")
	if knows(t, root, didB) {
		t.Fatal("the victim stored an announcement below the floor")
	}

	// 3. SIGTERM on a full disk: the final flush uses the reserve.
	v.signal(t, syscall.SIGTERM)
	noCrash(t, v, 0)

	// 4. No room for the reserve and the database: one clear line.
	v = victim("victim-full")
	noCrash(t, v, 1)
	line := strings.TrimSpace(v.stderr.String())
	if strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "med: ") || !strings.Contains(line, root) || !strings.Contains(line, "needs 96.0 MiB") {
		t.Fatalf("start on a full disk: want one line naming %s and the space needed, got:\n%s", root, line)
	}

	// 5. Room to start (reserve + 32 MiB) but below the floor: runs, refusing.
	leaveFree(t, filler, diskspace.ReserveSize+40<<20)
	v = victim("victim-low")
	addr = v.stdoutField(t, "address")
	waitLog(t, v, "disk space low: refusing")

	// 6. Space freed: accepted again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitLog(t, v, "disk space back")
	b.signal(t, syscall.SIGTERM)
	noCrash(t, b, 0)
	b = startNode1(t, rootB, "other-again", "--bootstrap", addr)
	testutil.WaitFor(t, "the victim to store the other node's announcement", 20*time.Second, func() bool { return knows(t, root, didB) })
	v.signal(t, syscall.SIGTERM)
	noCrash(t, v, 0)
}

func TestSizeFlag(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "512KiB": 512 << 10, "64MiB": 64 << 20, "2G": 2 << 30, "1TB": 1 << 40} {
		var s sizeFlag
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "12XB", "1.5GiB", "9999999TiB"} {
		var s sizeFlag
		if err := s.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, s)
		}
	}
}
