package gitstore

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// blockingReader signals its first Read and then blocks until released.
type blockingReader struct {
	once    sync.Once
	reading chan struct{}
	release chan struct{}
}

func newBlockingReader() *blockingReader {
	return &blockingReader{reading: make(chan struct{}), release: make(chan struct{})}
}

func (b *blockingReader) Read([]byte) (int, error) {
	b.once.Do(func() { close(b.reading) })
	<-b.release
	return 0, io.ErrClosedPipe
}

// pidRecorder records the processes a Runner starts.
type pidRecorder struct {
	mu   sync.Mutex
	pids []int
}

func (p *pidRecorder) add(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pids = append(p.pids, pid)
}

// assertGroupsGone checks that no process is left in the recorded
// process groups (each git runs in a group of its own).
func (p *pidRecorder) assertGroupsGone(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pids) == 0 {
		t.Fatal("no process was started")
	}
	for _, pid := range p.pids {
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still exists (kill 0: %v)", pid, err)
		}
	}
}

func TestIndexPackCancelReturnsPromptly(t *testing.T) {
	rec := &pidRecorder{}
	r := &Runner{onStart: rec.add}
	b := newBare(t, r)
	before := packDirState(t, b)

	rd := newBlockingReader()
	defer close(rd.release)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- b.IndexPack(ctx, rd, IndexOptions{}) }()

	<-rd.reading // index-pack runs and waits for data that never comes
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("IndexPack after cancel = %v, want context.Canceled", err)
		}
		t.Logf("returned %v after cancel: %v", time.Since(start), err)
	case <-time.After(time.Second):
		t.Fatal("IndexPack did not return within a second of cancel")
	}
	rec.assertGroupsGone(t)
	if after := packDirState(t, b); len(after) != len(before) {
		t.Fatalf("objects changed: before %v, after %v", before, after)
	}
}

func TestRunnerTimeout(t *testing.T) {
	// The Runner's timeout applies even when the context never ends.
	rec := &pidRecorder{}
	b := newBare(t, &Runner{})
	b.r = &Runner{Timeout: 200 * time.Millisecond, onStart: rec.add}
	rd := newBlockingReader()
	defer close(rd.release)
	err := b.IndexPack(context.Background(), rd, IndexOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("IndexPack past the timeout = %v, want DeadlineExceeded", err)
	}
	var ge *Error
	if !errors.As(err, &ge) || ge.Command != "index-pack" {
		t.Fatalf("error %v is not a *Error for index-pack", err)
	}
	rec.assertGroupsGone(t)
}

func TestHomeIsNotAConfigSource(t *testing.T) {
	// With git older than 2.32, GIT_CONFIG_GLOBAL is ignored and
	// $HOME/.gitconfig is read: the default HOME must hold no config.
	env := (&Runner{}).cleanEnv()
	for _, kv := range env {
		if kv == "HOME="+os.DevNull {
			return
		}
	}
	t.Fatalf("default HOME is not %s: %v", os.DevNull, env)
}
