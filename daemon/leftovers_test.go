package daemon

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/megaengine/megaengine/daemon/gitstore"
)

// gitTemporaries lists, relative to the bare repository dir and sorted,
// what an interrupted or failed git operation can leave behind in it:
//
//   - objects/incoming-*: the quarantine gitstore's IndexPack gives
//     index-pack (removed when IndexPack returns);
//   - tmp_* and .tmp-* under objects/: git's own quarantine
//     (objects/tmp_objdir-*), temporary packs, indexes and loose objects
//     (objects/pack/tmp_pack_*, tmp_idx_*, objects/??/tmp_obj_*) and
//     repack's objects/pack/.tmp-*;
//   - *.lock anywhere: ref, packed-refs, config and index locks.
func gitTemporaries(tb testing.TB, dir string) []string {
	tb.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		name := d.Name()
		underObjects := strings.HasPrefix(rel, "objects/")
		switch {
		case strings.HasSuffix(name, ".lock"),
			underObjects && (strings.HasPrefix(name, "tmp_") || strings.HasPrefix(name, ".tmp-")),
			rel == "objects/"+name && strings.HasPrefix(name, "incoming-"):
			found = append(found, rel)
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("looking for temporary files in %s: %v", dir, err)
	}
	slices.Sort(found)
	return found
}

// gitTemporaries finds each kind of leftover, including a quarantine
// directory, and nothing in a clean repository.
func TestGitTemporaries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "replica.git")
	bare, err := (&gitstore.Runner{}).InitBare(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	work := workRepo(t)
	if _, err := bare.Import(t.Context(), work, "ns"); err != nil {
		t.Fatal(err)
	}
	if left := gitTemporaries(t, dir); len(left) != 0 {
		t.Fatalf("a clean replica has temporaries: %v", left)
	}
	for _, tc := range []struct {
		path  string // created; a trailing slash makes a directory
		found string
	}{
		{"objects/incoming-1234/incoming.pack", "objects/incoming-1234"},
		{"objects/incoming-5678/", "objects/incoming-5678"},
		{"objects/tmp_objdir-incoming-ab12/pack/tmp_pack_x", "objects/tmp_objdir-incoming-ab12"},
		{"objects/pack/tmp_pack_Xy12", "objects/pack/tmp_pack_Xy12"},
		{"objects/pack/tmp_idx_Xy12", "objects/pack/tmp_idx_Xy12"},
		{"objects/pack/.tmp-42-pack-abc.pack", "objects/pack/.tmp-42-pack-abc.pack"},
		{"objects/ab/tmp_obj_Q1", "objects/ab/tmp_obj_Q1"},
		{"refs/namespaces/ns/refs/heads/main.lock", "refs/namespaces/ns/refs/heads/main.lock"},
		{"packed-refs.lock", "packed-refs.lock"},
	} {
		p := filepath.Join(dir, filepath.FromSlash(tc.path))
		if strings.HasSuffix(tc.path, "/") {
			err = os.MkdirAll(p, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.WriteFile(p, []byte("x"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if left := gitTemporaries(t, dir); !slices.Equal(left, []string{tc.found}) {
			t.Errorf("with %s: found %v, want [%s]", tc.path, left, tc.found)
		}
		if err := os.RemoveAll(filepath.Join(dir, filepath.FromSlash(tc.found))); err != nil {
			t.Fatal(err)
		}
	}
	if left := gitTemporaries(t, dir); len(left) != 0 {
		t.Fatalf("after cleaning up: %v", left)
	}
}
