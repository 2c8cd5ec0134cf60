package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A clone of a repository the node replicates takes the replica's object
// files by hard links, as git clone --local does, instead of a pack that
// upload-pack would make and index-pack index again. The helper answers
// git's "connect git-upload-pack" with "fallback", then serves "list" (the
// namespace's refs) and "fetch" (nothing to do: the objects are there).

// newClone returns the object directory of the repository git runs the
// helper for if that repository is empty — a clone being made — and ""
// otherwise (a fetch into an existing repository gets a thin pack).
func (h *helper) newClone() string {
	gitDir := h.getenv("GIT_DIR")
	if gitDir == "" {
		return ""
	}
	gitDir, err := filepath.Abs(gitDir)
	if err != nil {
		return ""
	}
	objects := filepath.Join(gitDir, "objects")
	if o := h.getenv("GIT_OBJECT_DIRECTORY"); o != "" {
		return "" // objects elsewhere: leave them to git
	}
	if _, err := os.Stat(filepath.Join(gitDir, "packed-refs")); err == nil {
		return ""
	}
	if m, _ := filepath.Glob(filepath.Join(objects, "pack", "*.pack")); len(m) > 0 {
		return ""
	}
	empty := true
	_ = filepath.WalkDir(filepath.Join(gitDir, "refs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			empty = false
			return filepath.SkipAll
		}
		return nil
	})
	if fi, err := os.Stat(objects); !empty || err != nil || !fi.IsDir() {
		return ""
	}
	return objects
}

// emptyObjects removes what a failed hand-off linked into objects: every
// pack file and loose object (a new clone has nothing else there).
func (h *helper) emptyObjects(objects string) {
	entries, _ := os.ReadDir(objects)
	for _, e := range entries {
		switch {
		case e.Name() == "pack":
			files, _ := filepath.Glob(filepath.Join(objects, "pack", "pack-*"))
			for _, f := range files {
				os.Remove(f)
			}
		case len(e.Name()) == 2:
			os.RemoveAll(filepath.Join(objects, e.Name()))
		}
	}
}

// list answers git's "list": the handed-off namespace's refs and HEAD.
func (h *helper) list() error {
	if h.handoff == nil {
		return fmt.Errorf("git sent the unknown command %q", "list")
	}
	lines := make([]string, 0, len(h.handoff.Refs)+2)
	if h.handoff.Head != "" {
		lines = append(lines, "@refs/heads/"+h.handoff.Head+" HEAD")
	}
	for _, r := range h.handoff.Refs {
		lines = append(lines, r.OID+" "+r.Name)
	}
	return h.reply(append(lines, "")...)
}

// fetchHandedOff answers git's batch of "fetch <oid> <name>" lines (first
// one read already): the objects are in place. With a pack that holds every
// ref's object, git is told of it (its .keep, which git deletes once the
// refs are written) and that the objects are complete, so it skips the
// connectivity walk, as git clone --local does.
func (h *helper) fetchHandedOff(first string) error {
	if h.handoff == nil {
		return fmt.Errorf("git sent the unknown command %q", first)
	}
	for {
		line, err := readLine(h.in)
		if err != nil {
			return fmt.Errorf("reading git's fetch command: %w", err)
		}
		if line == "" {
			break
		}
		if !strings.HasPrefix(line, "fetch ") {
			return fmt.Errorf("git sent %q among fetch commands", line)
		}
	}
	var out []string
	switch {
	case h.handoff.Keep != "" && h.checkConnect:
		out = append(out, "lock "+h.handoff.Keep, "connectivity-ok")
	case h.handoff.Keep != "":
		os.Remove(h.handoff.Keep) // git walks the objects itself: keep nothing
	}
	return h.reply(append(out, "")...)
}
