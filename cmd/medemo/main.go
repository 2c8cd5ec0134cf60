// Command medemo runs the MegaEngine demo: on this machine, from nothing, it
// starts three nodes on loopback in a temporary directory, creates a git
// repository, shares it from node1, shows node2 and node3 replicating it by
// themselves, clones it on node3, commits an update on node1 and shows the
// update arriving and being pulled — narrating each step with the commands
// a user would type. It uses the real med and mecli binaries and cleans up.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

type demo struct {
	bold  bool   // stdout is a terminal
	bin   string // directory holding med and mecli
	dir   string // scratch directory
	start time.Time
	out   io.Writer
	procs []*exec.Cmd
	step  int
}

const steps = 9

func main() {
	fs := pflag.NewFlagSet("medemo", pflag.ContinueOnError)
	bin := fs.String("bin", "", "directory with the med and mecli binaries (default: beside medemo)")
	keep := fs.Bool("keep", false, "keep the scratch directory (roots, logs, repositories) for a look afterwards")
	help := fs.BoolP("help", "h", false, "show help")
	if err := fs.Parse(os.Args[1:]); err != nil || *help {
		fmt.Fprintf(os.Stderr, "medemo runs a narrated local MegaEngine network.\n\nUsage:\n  medemo [flags]\n\nFlags:\n%s", fs.FlagUsages())
		if err != nil {
			os.Exit(2)
		}
		return
	}
	if *bin == "" {
		self, _ := os.Executable()
		*bin = filepath.Dir(self)
	}
	dir, err := os.MkdirTemp("", "medemo")
	if err != nil {
		fmt.Fprintln(os.Stderr, "medemo:", err)
		os.Exit(1)
	}
	d := &demo{bin: *bin, dir: dir, start: time.Now(), out: os.Stdout}
	if st, err := os.Stdout.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		d.bold = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = d.run(ctx)
	stop()
	d.stopAll()
	if *keep {
		fmt.Fprintf(d.out, "\nKept %s (node roots, logs, repositories).\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nmedemo: %v\n", err)
		if !*keep {
			fmt.Fprintln(os.Stderr, "(run with --keep to look at the node logs)")
		}
		os.Exit(1)
	}
}

func (d *demo) say(format string, a ...any) {
	d.step++
	on, off := "", ""
	if d.bold {
		on, off = "\033[1m", "\033[0m"
	}
	fmt.Fprintf(d.out, "\n%s[%d/%d] %s%s  (%.1fs)\n", on, d.step, steps, fmt.Sprintf(format, a...), off, time.Since(d.start).Seconds())
}

func (d *demo) note(format string, a ...any) { fmt.Fprintf(d.out, "      "+format+"\n", a...) }

// show prints a command as the user would type it.
func (d *demo) show(cmd string) { fmt.Fprintf(d.out, "      $ %s\n", cmd) }

func (d *demo) root(node string) string { return filepath.Join(d.dir, node) }

// mecli runs mecli for node and returns its stdout.
func (d *demo) mecli(ctx context.Context, node string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "mecli"), append([]string{"--root", d.root(node)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mecli %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (d *demo) mecliJSON(ctx context.Context, node string, v any, args ...string) error {
	out, err := d.mecli(ctx, node, append(args, "--json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

func (d *demo) git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Demo", "GIT_AUTHOR_EMAIL=demo@example.org",
		"GIT_COMMITTER_NAME=Demo", "GIT_COMMITTER_EMAIL=demo@example.org")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// startNode starts a daemon (through argv) and returns its address, read
// from the "address:" line it prints.
func (d *demo) startNode(ctx context.Context, node string, argv ...string) (string, error) {
	logf, err := os.Create(filepath.Join(d.dir, node+".log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	d.procs = append(d.procs, cmd)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return "", fmt.Errorf("%s exited; see %s", node, logf.Name())
			}
			if addr, found := strings.CutPrefix(l, "address: "); found {
				go func() {
					for range lines {
					}
				}()
				return strings.TrimSpace(addr), nil
			}
		case <-timeout:
			return "", fmt.Errorf("%s did not start in 15 s; see %s", node, logf.Name())
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (d *demo) stopAll() {
	for _, p := range d.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range d.procs {
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.Process.Kill()
		}
	}
}

// waitFor polls cond until it holds, for at most limit.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	for {
		ok, err := cond()
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			if err != nil {
				return 0, fmt.Errorf("waiting for %s: %w", what, err)
			}
			return 0, fmt.Errorf("waiting for %s: gave up after %v", what, limit)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type repoInfo struct {
	RepoID  string `json:"repo_id"`
	Name    string `json:"name"`
	Replica string `json:"replica"`
	Head    string `json:"head"`
	Clones  []struct {
		Path   string `json:"path"`
		Status string `json:"status"`
	} `json:"clones"`
}

func (d *demo) replicaAt(ctx context.Context, node, repo, head string) (bool, error) {
	var list []repoInfo
	if err := d.mecliJSON(ctx, node, &list, "repo", "list"); err != nil {
		return false, err
	}
	for _, r := range list {
		if r.RepoID == repo && r.Replica == "up-to-date" && r.Head == head {
			return true, nil
		}
	}
	return false, nil
}

func (d *demo) run(ctx context.Context) error {
	for _, b := range []string{"med", "mecli"} {
		if _, err := os.Stat(filepath.Join(d.bin, b)); err != nil {
			return fmt.Errorf("%s not found in %s (run 'make build' first)", b, d.bin)
		}
	}
	fmt.Fprintf(d.out, "MegaEngine demo: three nodes on this machine share, replicate, clone and update a repository.\nScratch directory: %s\n", d.dir)
	if err := d.startNetwork(ctx); err != nil {
		return err
	}
	work, err := d.makeRepo(ctx)
	if err != nil {
		return err
	}
	repo, err := d.shareAndReplicate(ctx, work)
	if err != nil {
		return err
	}
	if err := d.cloneUpdatePull(ctx, work, repo); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nDone in %.1fs: shared, replicated to two nodes, cloned, updated and pulled.\n", time.Since(d.start).Seconds())
	return nil
}

// startNetwork makes three identities and starts node1, then node2 and
// node3 bootstrapping to it, until node3 knows every node.
func (d *demo) startNetwork(ctx context.Context) error {
	d.say("Create an identity for each node")
	ids := map[string]string{}
	for _, node := range []string{"node1", "node2", "node3"} {
		var res struct{ DID string }
		if err := d.mecliJSON(ctx, node, &res, "auth", "init"); err != nil {
			return err
		}
		ids[node] = res.DID
		d.show(fmt.Sprintf("mecli --root %s auth init", d.root(node)))
		d.note("%s is %s", node, res.DID)
	}

	d.say("Start node1")
	d.show("med --root .../node1 --alias node1 --listen 127.0.0.1:0")
	addr1, err := d.startNode(ctx, "node1", filepath.Join(d.bin, "med"), "--root", d.root("node1"), "--alias", "node1", "--listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.note("node1 listens at %s", addr1)

	d.say("Start node2 and node3, each bootstrapping to node1 (the seed's 'node start')")
	for _, node := range []string{"node2", "node3"} {
		d.show(fmt.Sprintf("mecli --root .../%s node start --alias %s --addr 127.0.0.1:0 --bootstrap-node %s", node, node, addr1))
		if _, err := d.startNode(ctx, node, filepath.Join(d.bin, "mecli"), "--root", d.root(node), "node", "start", "--alias", node, "--addr", "127.0.0.1:0", "--bootstrap-node", addr1); err != nil {
			return err
		}
	}
	took, err := waitFor(ctx, 20*time.Second, "node3 to know every node", func() (bool, error) {
		var nodes []struct{ DID string }
		err := d.mecliJSON(ctx, "node3", &nodes, "node", "list")
		return len(nodes) == 3, err
	})
	if err != nil {
		return err
	}
	d.note("node3 knows all three nodes after %v (gossip):", took.Round(time.Millisecond))
	out, _ := d.mecli(ctx, "node3", "node", "list")
	d.note("%s", indent(out))

	return nil
}

// makeRepo makes node1's working repository: three commits and a tag.
func (d *demo) makeRepo(ctx context.Context) (string, error) {
	d.say("Make a git repository on node1's side")
	work := filepath.Join(d.dir, "work", "tiny")
	os.MkdirAll(work, 0o755)
	if _, err := d.git(ctx, work, "init", "-q", "-b", "main"); err != nil {
		return "", err
	}
	for i, f := range []string{"README.md", "main.go", "LICENSE"} {
		os.WriteFile(filepath.Join(work, f), []byte(fmt.Sprintf("%s, version %d\n", f, i)), 0o644)
		d.git(ctx, work, "add", f)
		if _, err := d.git(ctx, work, "commit", "-q", "-m", "Add "+f); err != nil {
			return "", err
		}
	}
	d.git(ctx, work, "tag", "v0.1")
	d.note("%s: 3 commits on main, tag v0.1", work)

	return work, nil
}

// shareAndReplicate has node1 share work and waits until node2 and node3
// replicated it; it returns the repository id.
func (d *demo) shareAndReplicate(ctx context.Context, work string) (string, error) {
	d.say("node1 shares it")
	d.show(fmt.Sprintf("mecli --root .../node1 repo add --path %s --description \"Tiny\"", work))
	var added repoInfo
	if err := d.mecliJSON(ctx, "node1", &added, "repo", "add", "--path", work, "--description", "Tiny"); err != nil {
		return "", err
	}
	head, _ := d.git(ctx, work, "rev-parse", "HEAD")
	d.note("repository id: %s", added.RepoID)

	d.say("node2 and node3 replicate it by themselves (announcement → fetch, verified)")
	for _, node := range []string{"node2", "node3"} {
		took, err := waitFor(ctx, 30*time.Second, node+" to replicate", func() (bool, error) { return d.replicaAt(ctx, node, added.RepoID, head) })
		if err != nil {
			return "", err
		}
		d.note("%s holds an up-to-date replica %v after the repo add", node, took.Round(time.Millisecond))
	}
	d.show("mecli --root .../node2 repo list")
	out, _ := d.mecli(ctx, "node2", "repo", "list")
	d.note("%s", indent(out))

	return added.RepoID, nil
}

// cloneUpdatePull clones on node3, commits on node1, and pulls on node3.
func (d *demo) cloneUpdatePull(ctx context.Context, work, repo string) error {
	d.say("node3 clones it")
	clone := filepath.Join(d.dir, "clone", "tiny")
	d.show(fmt.Sprintf("mecli --root .../node3 repo clone --repo-id %s --output %s", repo, clone))
	if _, err := d.mecli(ctx, "node3", "repo", "clone", "--repo-id", repo, "--output", clone); err != nil {
		return err
	}
	log, _ := d.git(ctx, clone, "log", "--oneline", "--decorate")
	d.note("%s", indent(log))

	d.say("node1 commits an update; it travels at once")
	os.WriteFile(filepath.Join(work, "README.md"), []byte("README.md, version 2: updated on node1\n"), 0o644)
	d.git(ctx, work, "commit", "-q", "-am", "Update README")
	newHead, _ := d.git(ctx, work, "rev-parse", "HEAD")
	d.show("git commit -am \"Update README\"   # in node1's working repository: nothing else to do")
	took, err := waitFor(ctx, 30*time.Second, "the update to reach node3", func() (bool, error) { return d.replicaAt(ctx, "node3", repo, newHead) })
	if err != nil {
		return err
	}
	d.note("node3's replica has the new commit %v after it was made", took.Round(time.Millisecond))
	d.show("mecli --root .../node3 repo list")
	out, _ := d.mecli(ctx, "node3", "repo", "list")
	d.note("%s", indent(out))

	d.say("node3 pulls the update into its clone")
	d.show(fmt.Sprintf("mecli --root .../node3 repo pull --repo-id %s   # inside %s", repo, clone))
	out, err = d.mecli(ctx, "node3", "repo", "pull", "--repo-id", repo, "--path", clone)
	if err != nil {
		return err
	}
	d.note("%s", indent(out))
	log, _ = d.git(ctx, clone, "log", "--oneline", "-2")
	d.note("%s", indent(log))
	if got, _ := d.git(ctx, clone, "rev-parse", "HEAD"); got != newHead {
		return errors.New("the clone did not get the update")
	}

	return nil
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n      ")
}
