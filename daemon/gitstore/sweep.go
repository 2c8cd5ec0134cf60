package gitstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// IsTemporary reports whether rel, a slash-separated path inside a bare
// repository, is what an interrupted git operation leaves behind:
//
//   - objects/incoming-*: the quarantine IndexPack gives index-pack;
//   - tmp_* and .tmp-* under objects/: git's own quarantine
//     (objects/tmp_objdir-*), temporary packs, indexes and loose objects
//     (objects/pack/tmp_pack_*, tmp_idx_*, objects/??/tmp_obj_*) and
//     repack's objects/pack/.tmp-*;
//   - *.lock anywhere: ref, packed-refs, config and index locks.
func IsTemporary(rel string) bool {
	name := filepath.Base(rel)
	switch {
	case strings.HasSuffix(name, ".lock"):
		return true
	case strings.HasPrefix(rel, "objects/") && (strings.HasPrefix(name, "tmp_") || strings.HasPrefix(name, ".tmp-")):
		return true
	}
	return rel == "objects/"+name && strings.HasPrefix(name, "incoming-")
}

// SweepTemporaries removes from the bare repository at dir every file and
// directory IsTemporary names, and returns them (relative, slash-separated).
// Only call it when no git process can be working in dir (a daemon at
// start-up, before it serves): a lock or quarantine in use would be lost.
func SweepTemporaries(dir string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !IsTemporary(rel) {
			return nil
		}
		if err := os.RemoveAll(path); err != nil {
			return err
		}
		found = append(found, rel)
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	return found, err
}
