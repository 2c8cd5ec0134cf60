package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/rpc"
)

// The daemon in the background: node start --detach and node stop.

const (
	// logFile is where a detached daemon's stdout and stderr go, in the root.
	logFile = "med.log"
	// detachTimeout bounds the wait for a detached daemon to answer
	// node.info: opening the store and binding sockets take well under a
	// second.
	detachTimeout = 30 * time.Second
	// stopTimeout bounds the wait for a stopped daemon to exit: it lets the
	// running transfers end and closes the store.
	stopTimeout = 30 * time.Second
	// logTailLines is how much of the log a failed start shows.
	logTailLines = 20
)

func init() {
	register(&command{
		path:   "node stop",
		method: rpc.MethodNodeStop,
		long: `Stop the running daemon cleanly (as SIGTERM does) and wait until its process
has exited.`,
		run: withClient(runNodeStop),
	})
}

// detached is what node start --detach reports.
type detached struct {
	DID    string `json:"did"`
	PID    int    `json:"pid"`
	Socket string `json:"socket"`
	Log    string `json:"log"`
}

// startDetached starts med with argv in its own session, its output
// appended to $ROOT/med.log, waits until it answers node.info and reports
// it.
func startDetached(ctx context.Context, e *env, med string, argv []string) error {
	if c, err := rpc.Dial(ctx, e.root); err == nil {
		c.Close()
		return fmt.Errorf("a daemon is already running for root %s (stop it with 'mecli node stop')", e.root)
	}
	if err := identity.PrepareRoot(e.root); err != nil { // as med will: fail now, with the fix
		return err
	}
	logPath := filepath.Join(e.root, logFile)
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	from, _ := log.Seek(0, io.SeekEnd) // the log's lines from here on are this start's
	cmd := exec.Command(med, argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log // stdin is nil: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", med, err)
	}
	info, err := awaitDaemon(ctx, e.root, cmd)
	if err != nil {
		return fmt.Errorf("%v%s", err, logTail(logPath, from))
	}
	d := detached{DID: info.DID, PID: cmd.Process.Pid, Socket: info.Socket, Log: logPath}
	return e.output(d, func(w io.Writer) {
		fmt.Fprintf(w, "did:     %s\npid:     %d\nsocket:  %s\nlog:     %s\n", d.DID, d.PID, d.Socket, d.Log)
	})
}

// awaitDaemon waits until the daemon cmd started answers node.info on
// root's socket, or until it exits or detachTimeout passes.
func awaitDaemon(ctx context.Context, root string, cmd *exec.Cmd) (rpc.NodeInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, detachTimeout)
	defer cancel()
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		cancel()
	}()
	info, err := func() (rpc.NodeInfo, error) {
		c, err := rpc.DialWith(ctx, root, rpc.DialOptions{Wait: detachTimeout})
		if err != nil {
			return rpc.NodeInfo{}, err
		}
		defer c.Close()
		return c.NodeInfo(ctx)
	}()
	if err == nil {
		return info, nil
	}
	select {
	case werr := <-exited:
		return rpc.NodeInfo{}, fmt.Errorf("med exited before it answered (%v)", werr)
	default:
	}
	return rpc.NodeInfo{}, fmt.Errorf("med (pid %d) did not answer on %s within %v; it is still running: %v",
		cmd.Process.Pid, rpc.SocketPath(root), detachTimeout, err)
}

// logTail is the log's last lines written since offset from, for an error
// message ("" if there are none).
func logTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > logTailLines {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf("; the last lines of %s:\n  %s", path, strings.Join(lines, "\n  "))
}

// runNodeStop asks the daemon to stop and waits until its process exited
// and its socket is gone.
func runNodeStop(ctx context.Context, e *env, c *rpc.Client, _ []string) error {
	r, err := c.NodeStop(ctx)
	if err != nil {
		return err
	}
	c.Close()
	sock := rpc.SocketPath(e.root)
	deadline := time.Now().Add(stopTimeout)
	for processAlive(r.PID) || socketExists(sock) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (pid %d) is still running %v after it was asked to stop; see %s",
				r.PID, stopTimeout, filepath.Join(e.root, logFile))
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return e.output(r, func(w io.Writer) { fmt.Fprintf(w, "stopped the daemon (pid %d)\n", r.PID) })
}

// processAlive reports whether pid is a running process: not gone, and not
// a zombie waiting for its parent to reap it.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: kill's answer is all there is
	}
	// "pid (comm) state …": comm may hold spaces and parentheses.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func socketExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
