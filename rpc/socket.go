package rpc

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// SocketName is the control socket's file name inside the node's root.
const SocketName = "med.sock"

// SocketMode is the control socket's permission: only the node's owner may
// talk to the daemon.
const SocketMode fs.FileMode = 0o600

// probeTimeout bounds the dial that tells a live daemon from a stale socket.
const probeTimeout = time.Second

// SocketPath returns the control socket's path for a node root.
func SocketPath(root string) string { return filepath.Join(root, SocketName) }

// MaxSocketPathLen is the longest socket path this system can bind or dial:
// sockaddr_un.sun_path holds 108 bytes on Linux and 104 on the BSDs and
// macOS, one of which is kept for the terminating NUL.
func MaxSocketPathLen() int {
	switch runtime.GOOS {
	case "linux", "android", "windows":
		return 107
	default:
		return 103
	}
}

// checkSocketPath rejects paths the kernel would refuse (or truncate), with
// advice the user can act on.
func checkSocketPath(path string) error {
	if n, max := len(path), MaxSocketPathLen(); n > max {
		return fmt.Errorf("%w: socket path %s is %d bytes, longer than the %d a unix socket allows; use a shorter --root",
			ErrSocketPath, path, n, max)
	}
	return nil
}

// Listen makes the daemon's control socket at path (normally
// SocketPath(root)) and returns its listener.
//
// If a socket file is already there, Listen dials it: when something answers,
// another daemon serves this root and Listen returns an error wrapping
// ErrDaemonRunning; when the dial is refused, the file is left over from a
// daemon that died, and Listen removes it. A path that exists but is not a
// socket is never removed (ErrSocketPath). The socket is made mode 0600; the
// root directory itself should be 0700, which closes the window between bind
// and chmod. Closing the listener removes the socket file.
//
// The probe is not a lock: two daemons started at the same instant on one
// stale socket could both get past it. The daemon holds a lock on its root
// (its database's directory lock) for that.
func Listen(path string) (net.Listener, error) {
	if err := checkSocketPath(path); err != nil {
		return nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// Someone bound it between the probe and now.
			return nil, fmt.Errorf("%w on this root (socket %s)", ErrDaemonRunning, path)
		}
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	return ln, nil
}

// clearStale removes a socket file nobody listens on, and refuses to go on
// if a daemon answers or the path is something else.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s exists and is not a socket (%s); not removing it", ErrSocketPath, path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("%w on this root (socket %s)", ErrDaemonRunning, path)
	case errors.Is(err, syscall.ECONNREFUSED):
		// Stale: the daemon that made it is gone.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing stale socket %s: %w", path, err)
		}
		return nil
	case errors.Is(err, syscall.ENOENT):
		return nil // removed since the Lstat
	case errors.Is(err, syscall.EAGAIN):
		// Linux: a listener whose backlog is full. Alive, just busy.
		return fmt.Errorf("%w on this root (socket %s)", ErrDaemonRunning, path)
	default:
		return fmt.Errorf("probing existing socket %s: %w", path, err)
	}
}
