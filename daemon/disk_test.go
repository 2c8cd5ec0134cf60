package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/daemon/diskspace"
	"github.com/megaengine/megaengine/daemon/store"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// A root whose socket path the kernel could not bind is refused before
// anything is made in it.
func TestNewChecksSocketPathFirst(t *testing.T) {
	root := filepath.Join(shortRoot(t), strings.Repeat("d", rpc.MaxSocketPathLen()))
	_, err := New(cfg(root, "long"))
	if !errors.Is(err, rpc.ErrSocketPath) {
		t.Fatalf("New with a %d-byte socket path = %v", len(rpc.SocketPath(root)), err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("New made the root before refusing its socket path: %v", err)
	}
}

// A root that others may enter is refused, with the fix, and left untouched.
func TestNewRefusesOpenRoot(t *testing.T) {
	root := shortRoot(t)
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg(root, "open"))
	if err == nil || !strings.Contains(err.Error(), "chmod 700 "+root) {
		t.Fatalf("New on a 0755 root = %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("New left %d files in a refused root", len(entries))
	}
}

// The reserve is in place while the node runs and gone once it stopped.
func TestNodeDiskReserve(t *testing.T) {
	root := shortRoot(t)
	r := start(t, cfg(root, "reserve"))
	reserve := filepath.Join(root, diskspace.ReserveName)
	if st, err := os.Stat(reserve); err != nil || st.Size() != diskspace.ReserveSize {
		t.Fatalf("reserve while running: %v, %v", st, err)
	}
	if st := r.DiskState(); st.Low || !st.Reserve || st.Floor != diskspace.DefaultFloor(st.Total) || st.Free == 0 {
		t.Fatalf("DiskState = %+v", st)
	}
	r.stop(t)
	if _, err := os.Stat(reserve); !os.IsNotExist(err) {
		t.Fatalf("reserve left after shutdown: %v", err)
	}
}

// Below the floor the node refuses to store announcements (its own too),
// says so, and still runs and stops cleanly.
func TestNodeBelowFloor(t *testing.T) {
	c := cfg(shortRoot(t), "low")
	c.MinFree = 1 << 60 // more than any disk has
	var log lockedBuffer
	c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	n, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.DiskLow(); !errors.Is(err, diskspace.ErrLow) {
		t.Fatalf("DiskLow = %v", err)
	}
	if st := n.DiskState(); !st.Low || st.Floor != 1<<60 {
		t.Fatalf("DiskState = %+v", st)
	}
	k, _ := identity.GenerateKey()
	if _, err := n.store.Put(store.Announcement{Type: 1, Origin: k.ID(), Timestamp: 1, Raw: []byte("x")}); !errors.Is(err, diskspace.ErrLow) {
		t.Fatalf("store.Put below the floor = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve below the floor = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node did not stop")
	}
	if got := strings.Count(log.String(), "disk space low: refusing"); got != 1 {
		t.Fatalf("the node said %d times that the disk is low, want once:\n%s", got, log.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
