package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/megaengine/megaengine/rpc"
)

// Patches are opened and revised by pushing (spec/remote-helper.md §
// "Patches"): git push origin HEAD:refs/patches opens one, a push to
// refs/heads/patches/<id> adds a revision. Push options (-o patch.message=…,
// -o patch.draft, -o patch.base=REV) reach receive-pack, which runs with
// receive.advertisePushOptions and a post-receive hook in a directory of
// the helper's own (core.hooksPath); the hook writes the ref updates and
// the push options to files there, which the helper reads once
// receive-pack has exited.

// patchRef is the ref a push opens a patch with; it is deleted again once
// the patch is open.
const patchRef = "refs/patches"

// patchBranchPrefix starts the branch of a patch in the pusher's namespace.
const patchBranchPrefix = "refs/heads/patches/"

// postReceive is the hook: it copies its stdin (one "<old> <new> <ref>"
// line per update) and the push options, one per line (git refuses push
// options with a newline), into $MEGA_PUSH_DIR.
const postReceive = `#!/bin/sh
cat > "$MEGA_PUSH_DIR/updates"
: > "$MEGA_PUSH_DIR/options"
i=0
while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
	eval "v=\$GIT_PUSH_OPTION_$i"
	printf '%s\n' "$v" >> "$MEGA_PUSH_DIR/options"
	i=$((i+1))
done
`

// pushHooks makes the hook directory and returns receive-pack's extra
// arguments and environment, and a func that removes the directory.
func pushHooks() (dir string, args, env []string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "git-remote-mega-push-")
	if err != nil {
		return "", nil, nil, nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	hooks := filepath.Join(dir, "hooks")
	if err := os.Mkdir(hooks, 0o700); err == nil {
		err = os.WriteFile(filepath.Join(hooks, "post-receive"), []byte(postReceive), 0o700)
	}
	if err != nil {
		cleanup()
		return "", nil, nil, nil, err
	}
	args = []string{"-c", "receive.advertisePushOptions=true", "-c", "core.hooksPath=" + hooks,
		"-c", "transfer.hideRefs=!" + patchRef}
	return dir, args, []string{"MEGA_PUSH_DIR=" + dir}, cleanup, nil
}

// refUpdate is one line the hook recorded.
type refUpdate struct{ old, new, ref string }

// readPush reads what the hook recorded (nothing if it did not run).
func readPush(dir string) (updates []refUpdate, options map[string]string) {
	options = map[string]string{}
	if f, err := os.Open(filepath.Join(dir, "updates")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 {
				updates = append(updates, refUpdate{f[0], f[1], f[2]})
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile(filepath.Join(dir, "options")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				options[k] = v
			} else if line != "" {
				options[line] = ""
			}
		}
	}
	return updates, options
}

func zeroOID(s string) bool { return strings.Trim(s, "0") == "" }

// patchPush acts on the patch refs of a finished push: it opens a patch
// for refs/patches and adds a revision for each refs/heads/patches/<id>.
func (h *helper) patchPush(ctx context.Context, c *rpc.Client, repo string, loc rpc.LocateResult, dir string) error {
	updates, options := readPush(dir)
	for _, u := range updates {
		var err error
		switch {
		case zeroOID(u.new):
			continue
		case u.ref == patchRefIn:
			err = h.openPatch(ctx, c, repo, loc, u.new, options)
		case strings.HasPrefix(u.ref, patchBranchPrefix):
			err = h.revisePatch(ctx, c, repo, loc, strings.TrimPrefix(u.ref, patchBranchPrefix), u.new, options)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *helper) openPatch(ctx context.Context, c *rpc.Client, repo string, loc rpc.LocateResult, head string, options map[string]string) error {
	// The ref only carried the commits here, and an unsigned ref would stop
	// the node serving its namespace: it goes before anything is
	// announced, the patch branch replaces it (the objects stay).
	if _, err := h.bareGit(loc, "update-ref", "-d", "refs/namespaces/"+loc.Namespace+"/"+patchRefIn, head); err != nil {
		return fmt.Errorf("removing %s: %w", patchRefIn, err)
	}
	base, err := h.patchBase(ctx, c, repo, loc, head, options)
	if err != nil {
		return err
	}
	msg, ok := options["patch.message"]
	if !ok {
		if msg, err = h.firstMessage(loc, base, head); err != nil {
			return err
		}
	}
	title, desc := splitMessage(msg)
	_, isDraft := options["patch.draft"]
	res, err := c.PatchOpen(ctx, rpc.PatchOpenParams{RepoID: repo, Title: title, Description: desc, Base: base, Head: head, Draft: isDraft})
	if err != nil {
		return fmt.Errorf("opening a patch: %w", err)
	}
	fmt.Fprintf(h.errOut, "mega: opened patch %s\n", res.Change)
	h.setUpstream(head, res.Change)
	return nil
}

func (h *helper) revisePatch(ctx context.Context, c *rpc.Client, repo string, loc rpc.LocateResult, id, head string, options map[string]string) error {
	base, err := h.patchBase(ctx, c, repo, loc, head, options)
	if err != nil {
		return err
	}
	desc := options["patch.message"]
	res, err := c.PatchRevise(ctx, rpc.PatchReviseParams{RepoID: repo, ID: id, Base: base, Head: head, Description: strings.ReplaceAll(desc, `\n`, "\n")})
	if err != nil {
		return fmt.Errorf("revising patch %s: %w", id, err)
	}
	fmt.Fprintf(h.errOut, "mega: revised patch %s (revision %s)\n", res.Patch.ID, res.Change)
	return nil
}

// patchBase is -o patch.base=REV (resolved in the working copy), else the
// merge base of head and the canonical default branch: the first
// delegate's, in the replica.
func (h *helper) patchBase(ctx context.Context, c *rpc.Client, repo string, loc rpc.LocateResult, head string, options map[string]string) (string, error) {
	if rev, ok := options["patch.base"]; ok {
		out, err := h.workGit("rev-parse", "--verify", "--end-of-options", rev+"^{commit}")
		if err != nil {
			return "", fmt.Errorf("patch.base %q is not a commit here: %w", rev, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	d, err := c.RepoShow(ctx, repo)
	if err != nil {
		return "", err
	}
	if len(d.Delegates) == 0 {
		return "", errors.New("the repository has no delegates, so no canonical branch to base a patch on; give -o patch.base=REV")
	}
	ns := strings.TrimPrefix(d.Delegates[0], "did:key:")
	out, err := h.bareGit(loc, "merge-base", head, "refs/namespaces/"+ns+"/refs/heads/"+d.DefaultBranch)
	if err != nil {
		return "", fmt.Errorf("no merge base of %s and the delegate's %s: %w; give -o patch.base=REV", head, d.DefaultBranch, err)
	}
	return out, nil
}

// firstMessage is the message of the first commit of base..head.
func (h *helper) firstMessage(loc rpc.LocateResult, base, head string) (string, error) {
	list, err := h.bareGit(loc, "rev-list", "--reverse", base+".."+head)
	if err != nil || list == "" {
		return "", fmt.Errorf("no commits between the base %s and %s", base, head)
	}
	first, _, _ := strings.Cut(list, "\n")
	return h.bareGit(loc, "log", "-1", "--format=%B", first)
}

// splitMessage: the first line is the title, the rest (after blank lines)
// the description; a literal \n (push options hold no newlines) is one.
func splitMessage(msg string) (title, desc string) {
	msg = strings.TrimSpace(strings.ReplaceAll(msg, `\n`, "\n"))
	title, desc, _ = strings.Cut(msg, "\n")
	return strings.TrimSpace(title), strings.TrimSpace(desc)
}

// setUpstream points the upstream of the working copy's current branch
// at the patch's branch, if that branch is what was pushed.
func (h *helper) setUpstream(head, id string) {
	if h.workTree() == "" {
		return
	}
	out, err := h.workGit("symbolic-ref", "--quiet", "--short", "HEAD")
	branch := strings.TrimSpace(string(out))
	if err != nil || branch == "" {
		return
	}
	if tip, err := h.workGit("rev-parse", "--verify", "HEAD"); err != nil || strings.TrimSpace(string(tip)) != head {
		return
	}
	for _, kv := range [][2]string{{"remote", "origin"}, {"merge", patchBranchPrefix + id}} {
		if _, err := h.workGit("config", "branch."+branch+"."+kv[0], kv[1]); err != nil {
			h.warn("could not set the upstream of %s: %v", branch, err)
			return
		}
	}
	fmt.Fprintf(h.errOut, "mega: branch %s now has upstream origin/patches/%s\n", branch, id)
	// git push's default ("simple") refuses an upstream of another name;
	// "upstream" pushes there, and is the same for branches whose
	// upstream has their name. A choice the user made is left alone.
	if _, err := h.workGit("config", "--get", "push.default"); err != nil {
		if _, err := h.workGit("config", "push.default", "upstream"); err == nil {
			fmt.Fprintf(h.errOut, "mega: set push.default=upstream in this repository: a plain 'git push' adds a revision\n")
		}
	}
}

// bareGit runs git on the replica and returns its trimmed output.
func (h *helper) bareGit(loc rpc.LocateResult, args ...string) (string, error) {
	cmd := exec.Command(h.git, append([]string{"--git-dir=" + loc.GitDir}, args...)...)
	cmd.Env = serviceEnv(h.env, loc.Namespace)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// workGit runs git on the working copy git runs the helper for.
func (h *helper) workGit(args ...string) ([]byte, error) {
	cmd := exec.Command(h.git, args...)
	cmd.Env = h.env
	return cmd.Output()
}

// patchRefIn is what a push to refs/patches becomes on its way to
// receive-pack: receive-pack refuses a one-level name under refs/ ("funny
// refname"), so the helper renames the command's ref, and renames it back
// in receive-pack's status report.
const patchRefIn = patchRef + "/new"

// startProxied starts receive-pack with pipes and relays the stream:
// git's commands with refs/patches renamed to patchRefIn, and
// receive-pack's status report with it renamed back; the rest (the
// packfile, push options, progress) unchanged.
func (h *helper) startProxied(cmd *exec.Cmd) (wait func() error, err error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		rewriteCommands(stdin, h.in)
		stdin.Close()
	}()
	return func() error {
		copyErr := rewriteAdvertisement(h.out, stdout)
		if f, ok := h.out.(*os.File); ok {
			f.Close() // git sees the connection end with the service's output
		}
		if err := cmd.Wait(); err != nil {
			return err
		}
		return copyErr
	}, nil
}

// readPkt reads one pkt-line: its payload, or nil for a flush packet.
func readPkt(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return nil, fmt.Errorf("bad pkt-line length %q", hdr)
	}
	if n < 4 {
		return nil, nil // flush (0000), delim or response-end
	}
	b := make([]byte, n-4)
	_, err = io.ReadFull(r, b)
	return b, err
}

func writePkt(w io.Writer, b []byte) error {
	if b == nil {
		_, err := io.WriteString(w, "0000")
		return err
	}
	_, err := fmt.Fprintf(w, "%04x%s", len(b)+4, b)
	return err
}

// rewriteAdvertisement copies receive-pack's output: the advertisement
// unchanged up to its flush packet, then the status report with the
// status of patchRefIn given as that of refs/patches (the push's own
// name), inside side-band packets or not.
func rewriteAdvertisement(dst io.Writer, src io.Reader) error {
	advertised := false
	for {
		b, err := readPkt(src)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case b == nil:
			advertised = true
		case advertised && len(b) > 0 && b[0] == 1:
			b = append([]byte{1}, rewriteReport(b[1:])...)
		case advertised:
			b = statusLine(b)
		}
		if err := writePkt(dst, b); err != nil {
			return err
		}
	}
}

// rewriteReport rewrites the pkt-lines of a side-band packet; one that
// does not parse whole is left as it is.
func rewriteReport(data []byte) []byte {
	var out bytes.Buffer
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		b, err := readPkt(r)
		if err != nil {
			return data
		}
		if b != nil {
			b = statusLine(b)
		}
		writePkt(&out, b)
	}
	return out.Bytes()
}

// statusLine renames patchRefIn in an "ok <ref>" or "ng <ref> <why>" line.
func statusLine(b []byte) []byte {
	for _, verb := range []string{"ok ", "ng "} {
		prefix := verb + patchRefIn
		if rest, ok := bytes.CutPrefix(b, []byte(prefix)); ok && (len(rest) == 0 || rest[0] == '\n' || rest[0] == ' ') {
			return append([]byte(verb+patchRef), rest...)
		}
	}
	return b
}

// rewriteCommands copies git's side of the push, renaming refs/patches in
// the command list (up to the first flush packet).
func rewriteCommands(dst io.Writer, src io.Reader) error {
	for {
		b, err := readPkt(src)
		if err != nil {
			return err
		}
		if b != nil {
			cmd, caps, hasCaps := bytes.Cut(b, []byte{0})
			trimmed := bytes.TrimSuffix(cmd, []byte("\n"))
			if f := bytes.Fields(trimmed); len(f) == 3 && string(f[2]) == patchRef {
				nb := append(append([]byte(nil), trimmed[:len(trimmed)-len(patchRef)]...), patchRefIn...)
				if len(trimmed) < len(cmd) {
					nb = append(nb, '\n')
				}
				if hasCaps {
					nb = append(append(nb, 0), caps...)
				}
				b = nb
			}
		}
		if err := writePkt(dst, b); err != nil {
			return err
		}
		if b == nil {
			_, err := io.Copy(dst, src)
			return err
		}
	}
}
