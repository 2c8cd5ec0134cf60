package gitstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Defaults of the Runner's zero value.
const (
	DefaultBin     = "git"
	DefaultTimeout = 10 * time.Minute
	// MinMajor.MinMinor is the oldest git this package supports (it needs
	// fetch --no-write-fetch-head, update-ref --stdin transactions,
	// GIT_CONFIG_GLOBAL, --end-of-options and multi-pack-index write
	// --bitmap --stdin-packs).
	MinMajor = 2
	MinMinor = 34
)

// waitDelay bounds how long Wait may wait for git's output pipes after the
// process has exited or been killed (a stray grandchild could hold them).
// Generous: on a loaded machine the copying goroutines can lag for a second
// after a git that exited normally, and that must not fail the call.
const waitDelay = 10 * time.Second

// copyBufSize is the chunk size used to feed git's stdin.
const copyBufSize = 64 << 10

// Runner runs git. The zero value is ready to use; a Runner is safe for
// concurrent use and must not be changed after first use.
type Runner struct {
	// Bin is the git executable, looked up in PATH if it has no slash.
	// Default "git".
	Bin string
	// Timeout bounds every git command (the caller's context may be
	// shorter). Default 10 minutes.
	Timeout time.Duration
	// Home is HOME for the sanitized environment. Default os.DevNull:
	// git reads no user configuration anyway (GIT_CONFIG_GLOBAL is
	// /dev/null), and HOME must not be a directory others can write (such
	// as /tmp) for whatever else git looks up there. Under /dev/null
	// nothing can exist, and git treats the ENOTDIR like a missing file.
	Home string

	// onStart, if set (tests only), is called with each started process.
	onStart func(pid int)
}

func (r *Runner) bin() string {
	if r.Bin == "" {
		return DefaultBin
	}
	return r.Bin
}

func (r *Runner) timeout() time.Duration {
	if r.Timeout <= 0 {
		return DefaultTimeout
	}
	return r.Timeout
}

// cleanEnv is the environment of every git command on the daemon's own
// repositories and of reads of the user's: nothing is inherited but PATH,
// and no system or user configuration is read, so the user's aliases,
// hooks, signing or credential settings cannot interfere.
func (r *Runner) cleanEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	home := r.Home
	if home == "" {
		home = os.DevNull
	}
	return []string{
		"PATH=" + path,
		"HOME=" + home,
		"LANG=C",
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"XDG_CONFIG_HOME=" + os.DevNull,
		"GIT_ATTR_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_NO_REPLACE_OBJECTS=1",
	}
}

// repoEnvVars redirect git to another repository or inject configuration:
// the list printed by `git rev-parse --local-env-vars`, plus GIT_NAMESPACE
// and GIT_QUARANTINE_PATH. userEnv drops them.
var repoEnvVars = map[string]bool{
	"GIT_ALTERNATE_OBJECT_DIRECTORIES": true,
	"GIT_CONFIG":                       true,
	"GIT_CONFIG_PARAMETERS":            true,
	"GIT_CONFIG_COUNT":                 true,
	"GIT_OBJECT_DIRECTORY":             true,
	"GIT_DIR":                          true,
	"GIT_WORK_TREE":                    true,
	"GIT_IMPLICIT_WORK_TREE":           true,
	"GIT_GRAFT_FILE":                   true,
	"GIT_INDEX_FILE":                   true,
	"GIT_NO_REPLACE_OBJECTS":           true,
	"GIT_REPLACE_REF_BASE":             true,
	"GIT_PREFIX":                       true,
	"GIT_SHALLOW_FILE":                 true,
	"GIT_COMMON_DIR":                   true,
	"GIT_NAMESPACE":                    true,
	"GIT_QUARANTINE_PATH":              true,
}

// userEnv is the environment for commands that write the user's working
// copy: the daemon's own environment (the user's identity and settings)
// without the variables that would point git elsewhere, with messages in
// the C locale (errors are matched) and no terminal prompts.
func userEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case repoEnvVars[k],
			strings.HasPrefix(k, "GIT_CONFIG_KEY_"),
			strings.HasPrefix(k, "GIT_CONFIG_VALUE_"),
			k == "LC_ALL", k == "LANGUAGE", k == "GIT_TERMINAL_PROMPT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "GIT_TERMINAL_PROMPT=0")
}

// call describes one git command.
type call struct {
	args    []string  // arguments after the git binary; global -c options first
	gitDir  string    // sets GIT_DIR when not empty
	dir     string    // working directory; empty: the current one
	env     []string  // added to the environment
	userEnv bool      // start from userEnv instead of cleanEnv
	stdin   io.Reader // fed to git's stdin; read to EOF (see run)
	stdout  io.Writer // receives stdout; nil: run returns it
	// progress, if set, receives git's --progress reports from stderr.
	progress func(stage string, done, total int)
}

// command returns the git subcommand of c, for error messages.
func (c *call) command() string {
	for i := 0; i < len(c.args); i++ {
		if c.args[i] == "-c" || c.args[i] == "-C" {
			i++
			continue
		}
		if !strings.HasPrefix(c.args[i], "-") {
			return c.args[i]
		}
	}
	return "git"
}

// inputResult is how feeding stdin ended.
type inputResult struct {
	readErr  error // from the caller's reader (not io.EOF)
	writeErr error // writing to git: git exited before reading everything
}

// run runs git and returns its stdout (unless c.stdout is set).
//
// Stdin, if any, is copied by a goroutine of run's own. When git fails or
// the context ends, run returns at once even if that goroutine is blocked
// in a Read of c.stdin that never returns (it then finishes whenever the
// reader does, and drops what it read). When git succeeds, run waits until
// the reader reaches EOF: input that git did not consume is an error.
func (r *Runner) run(ctx context.Context, c call) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	cmd := r.command(ctx, c)
	var stdout bytes.Buffer
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	} else {
		cmd.Stdout = &stdout
	}
	stderr := &stderrSink{progress: c.progress}
	cmd.Stderr = stderr

	var stdinPipe io.WriteCloser
	if c.stdin != nil {
		p, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("git %s: %w", c.command(), err)
		}
		stdinPipe = p
	}
	if err := cmd.Start(); err != nil {
		return nil, &Error{Command: c.command(), ExitCode: -1, Err: err}
	}
	if r.onStart != nil {
		r.onStart(cmd.Process.Pid)
	}
	inputDone := make(chan inputResult, 1)
	if c.stdin != nil {
		go feed(stdinPipe, c.stdin, inputDone)
	}

	waitErr := cmd.Wait()
	stderr.flush()

	var in inputResult
	inputWaited := true // false: git succeeded but the input did not end in time
	if c.stdin != nil {
		if waitErr == nil && ctx.Err() == nil {
			select {
			case in = <-inputDone:
			case <-ctx.Done():
				inputWaited = false
			}
		} else {
			select {
			case in = <-inputDone:
			default:
			}
		}
	}

	if err := c.outcome(ctx, waitErr, in, inputWaited, stderr); err != nil {
		return nil, err
	}
	return stdout.Bytes(), nil
}

// command is the process for c: its directory, environment and process group.
func (r *Runner) command(ctx context.Context, c call) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.bin(), c.args...)
	cmd.Dir = c.dir
	if c.userEnv {
		cmd.Env = userEnv()
	} else {
		cmd.Env = r.cleanEnv()
	}
	if c.gitDir != "" {
		cmd.Env = append(cmd.Env, "GIT_DIR="+c.gitDir)
	}
	cmd.Env = append(cmd.Env, c.env...)
	setProcessGroup(cmd)
	cmd.WaitDelay = waitDelay
	return cmd
}

// outcome turns how git and its input ended into run's error (nil: success).
func (c call) outcome(ctx context.Context, waitErr error, in inputResult, inputWaited bool, stderr *stderrSink) error {
	switch {
	case ctx.Err() != nil && (waitErr != nil || !inputWaited):
		return &Error{Command: c.command(), ExitCode: -1, Stderr: stderr.tail(), Err: ctx.Err()}
	case in.readErr != nil:
		return fmt.Errorf("git %s: reading input: %w", c.command(), in.readErr)
	case waitErr != nil:
		code := -1
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			code = ee.ExitCode()
		}
		return &Error{Command: c.command(), ExitCode: code, Stderr: stderr.tail(), Err: waitErr}
	case in.writeErr != nil:
		return fmt.Errorf("git %s: exited before reading all its input (trailing data?): %w", c.command(), in.writeErr)
	}
	return nil
}

// feed copies rd to git's stdin and reports how it ended. The result is sent
// before the pipe is closed, so that by the time git has seen EOF and
// exited, run finds it.
func feed(pipe io.WriteCloser, rd io.Reader, done chan<- inputResult) {
	var res inputResult
	buf := make([]byte, copyBufSize)
	for {
		n, err := rd.Read(buf)
		if n > 0 {
			if _, werr := pipe.Write(buf[:n]); werr != nil {
				res.writeErr = werr
				break
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			res.readErr = err
			break
		}
	}
	done <- res
	_ = pipe.Close()
}

// Version returns the major and minor version of the git binary.
func (r *Runner) Version(ctx context.Context) (major, minor int, err error) {
	out, err := r.run(ctx, call{args: []string{"version"}})
	if err != nil {
		return 0, 0, err
	}
	return parseVersion(string(out))
}

// parseVersion reads "git version 2.39.5" (also "2.39.5.windows.1",
// "2.39.5 (Apple Git-143)").
func parseVersion(s string) (major, minor int, err error) {
	f := strings.Fields(s)
	if len(f) < 3 || f[0] != "git" || f[1] != "version" {
		return 0, 0, fmt.Errorf("parsing git version %q: unexpected form", strings.TrimSpace(s))
	}
	parts := strings.SplitN(f[2], ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("parsing git version %q: no minor version", f[2])
	}
	if major, err = strconv.Atoi(parts[0]); err != nil {
		return 0, 0, fmt.Errorf("parsing git version %q: %w", f[2], err)
	}
	if minor, err = strconv.Atoi(parts[1]); err != nil {
		return 0, 0, fmt.Errorf("parsing git version %q: %w", f[2], err)
	}
	return major, minor, nil
}

// CheckVersion returns an error wrapping ErrGitVersion unless git is at
// least MinMajor.MinMinor, or an error saying git could not be run.
func (r *Runner) CheckVersion(ctx context.Context) error {
	major, minor, err := r.Version(ctx)
	if err != nil {
		return fmt.Errorf("checking the git version (is git installed and in PATH?): %w", err)
	}
	if major < MinMajor || major == MinMajor && minor < MinMinor {
		return fmt.Errorf("%w: %s is version %d.%d, need %d.%d or newer", ErrGitVersion, r.bin(), major, minor, MinMajor, MinMinor)
	}
	return nil
}
