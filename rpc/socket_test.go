package rpc

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSocketPath(t *testing.T) {
	if got := SocketPath("/home/alice/.megaengine"); got != "/home/alice/.megaengine/med.sock" {
		t.Fatal(got)
	}
}

func TestListenModeAndCloseRemoves(t *testing.T) {
	path := SocketPath(shortDir(t))
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket file after Close: %v", err)
	}
}

// makeStale leaves a socket file that nobody listens on, as a daemon that
// was killed does.
func makeStale(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("stale socket not left behind: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	root := shortDir(t)
	path := SocketPath(root)
	makeStale(t, path)
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	defer ln.Close()
	// It is a live listener now.
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

func TestListenRefusesLiveDaemon(t *testing.T) {
	ts := startServer(t, newFake())
	_, err := Listen(ts.path)
	if !errors.Is(err, ErrDaemonRunning) {
		t.Fatalf("Listen beside a live daemon: %v, want ErrDaemonRunning", err)
	}
	mustContain(t, err.Error(), "a daemon is already running on this root (socket "+ts.path+")")
	// The live daemon's socket is untouched and still serves.
	if _, err := ts.client(t).NodeInfo(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestListenKeepsNonSocket(t *testing.T) {
	path := SocketPath(shortDir(t))
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(path)
	if !errors.Is(err, ErrSocketPath) {
		t.Fatalf("Listen on a regular file: %v, want ErrSocketPath", err)
	}
	mustContain(t, err.Error(), "not a socket")
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Fatalf("the file was touched: %q, %v", b, err)
	}
	// A directory is not removed either.
	dir := SocketPath(shortDir(t))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(dir); !errors.Is(err, ErrSocketPath) {
		t.Fatalf("Listen on a directory: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatal("the directory was removed")
	}
}

func TestSocketPathTooLong(t *testing.T) {
	root := filepath.Join(shortDir(t), strings.Repeat("r", MaxSocketPathLen()))
	_, err := Listen(SocketPath(root))
	if !errors.Is(err, ErrSocketPath) {
		t.Fatalf("Listen with a long path: %v", err)
	}
	mustContain(t, err.Error(), "shorter --root")
	_, err = Dial(ctxT(t), root)
	if !errors.Is(err, ErrSocketPath) {
		t.Fatalf("Dial with a long path: %v", err)
	}
	// The longest allowed path works.
	base := shortDir(t)
	n := MaxSocketPathLen() - len(base) - len("/") - len("/"+SocketName)
	if n < 1 {
		t.Skip("temp dir too long")
	}
	root = filepath.Join(base, strings.Repeat("r", n))
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if len(SocketPath(root)) != MaxSocketPathLen() {
		t.Fatalf("path length %d", len(SocketPath(root)))
	}
	ln, err := Listen(SocketPath(root))
	if err != nil {
		t.Fatalf("Listen on a path of the maximum length: %v", err)
	}
	ln.Close()
}

func TestDialNoDaemon(t *testing.T) {
	root := shortDir(t)
	path := SocketPath(root)
	want := "no daemon running for root " + root + " (socket " + path + "); start one with 'med --root " + root + "' or 'mecli node start'"

	_, err := Dial(ctxT(t), root) // no socket file
	if !errors.Is(err, ErrNoDaemon) || err.Error() != want {
		t.Fatalf("Dial with no socket:\n got %v\nwant %s", err, want)
	}
	makeStale(t, path) // a socket file nobody listens on
	_, err = Dial(ctxT(t), root)
	if !errors.Is(err, ErrNoDaemon) || err.Error() != want {
		t.Fatalf("Dial with a stale socket: %v", err)
	}
	// With Wait, it gives up after Wait.
	start := time.Now()
	_, err = DialWith(ctxT(t), root, DialOptions{Wait: 100 * time.Millisecond})
	if !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("DialWith Wait: %v", err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Error("DialWith gave up before Wait")
	}
}

// With Wait, Dial reaches a daemon that starts after the first attempt.
func TestDialWaitsForDaemon(t *testing.T) {
	root := shortDir(t)
	refused := make(chan struct{}, 1)
	testHookDialRefused = func(error) {
		select {
		case refused <- struct{}{}:
		default:
		}
	}
	defer func() { testHookDialRefused = nil }()
	type result struct {
		c   *Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := DialWith(ctxT(t), root, DialOptions{Wait: 20 * time.Second})
		done <- result{c, err}
	}()
	<-refused // the first attempt found nothing
	ln, err := Listen(SocketPath(root))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- NewServer(newFake(), nil).Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	if _, err := r.c.NodeInfo(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestClientCallAfterDaemonGone(t *testing.T) {
	ts := startServer(t, newFake())
	c := ts.client(t)
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
	_, err := c.NodeInfo(ctxT(t))
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("call after shutdown: %v, want ErrClosed", err)
	}
}
