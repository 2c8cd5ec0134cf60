package gitstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrInvalid: an argument (object id, ref name, namespace, branch, path,
	// URL) was rejected before git ran.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotRepo: the path is not a git repository of the expected kind.
	ErrNotRepo = errors.New("not a git repository")
	// ErrDetached: HEAD is not a symbolic ref to a branch.
	ErrDetached = errors.New("HEAD is detached")
	// ErrMissingObjects: objects reachable from the given tips are absent.
	ErrMissingObjects = errors.New("missing objects")
	// ErrDiverged: the local branch and its upstream have both moved on, so
	// a fast-forward is impossible.
	ErrDiverged = errors.New("branch has diverged from its upstream")
	// ErrLocalChanges: uncommitted changes in the work tree block the update.
	ErrLocalChanges = errors.New("local changes would be overwritten")
	// ErrGitVersion: the git binary is older than MinMajor.MinMinor.
	ErrGitVersion = errors.New("git is too old")
)

// Error is a failed git command. Its message is "git <command>: " followed by
// the last lines of git's stderr, or by the context's error when the command
// was cancelled or timed out (then errors.Is(err, context.Canceled) or
// context.DeadlineExceeded holds).
type Error struct {
	Command  string // git subcommand, e.g. "index-pack"
	ExitCode int    // git's exit status; -1 if it did not exit normally
	Stderr   string // the last non-progress lines of stderr, trimmed
	Err      error  // the underlying error (*exec.ExitError, a context error, …)
}

// An Error message shows git's stderr from its first "error:" or "fatal:"
// line, at most maxMsgLines lines; without such a line, the last tailLines.
const (
	tailLines   = 3
	maxMsgLines = 6
)

func (e *Error) Error() string {
	var msg string
	if e.Stderr != "" {
		lines := strings.Split(e.Stderr, "\n")
		from := max(0, len(lines)-tailLines)
		for i, l := range lines {
			if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "fatal:") {
				from = min(i, from)
				break
			}
		}
		lines = lines[from:]
		if len(lines) > maxMsgLines {
			lines = lines[len(lines)-maxMsgLines:]
		}
		msg = strings.Join(lines, "; ")
	}
	switch {
	case msg == "":
		msg = e.Err.Error()
	case isContextErr(e.Err):
		msg = e.Err.Error() + " (" + msg + ")"
	}
	return fmt.Sprintf("git %s: %s", e.Command, msg)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// exitCode returns git's exit status from an error returned by run, or -1.
func exitCode(err error) int {
	var ge *Error
	if errors.As(err, &ge) {
		return ge.ExitCode
	}
	return -1
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
