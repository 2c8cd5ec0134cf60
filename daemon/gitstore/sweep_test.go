package gitstore

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSweepTemporaries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r.git")
	if _, err := (&Runner{}).InitBare(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	junk := []string{
		"objects/incoming-123/incoming.pack",
		"objects/pack/tmp_pack_abc",
		"objects/pack/.tmp-9-pack",
		"objects/tmp_objdir-incoming-x/ab/cd",
		"objects/ab/tmp_obj_1",
		"refs/heads/main.lock",
		"packed-refs.lock",
	}
	for _, j := range junk {
		p := filepath.Join(dir, j)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, "objects/pack/pack-1.pack")
	os.WriteFile(keep, []byte("x"), 0o644)
	got, err := SweepTemporaries(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"objects/ab/tmp_obj_1", "objects/incoming-123", "objects/pack/.tmp-9-pack", "objects/pack/tmp_pack_abc",
		"objects/tmp_objdir-incoming-x", "packed-refs.lock", "refs/heads/main.lock"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("swept %v, want %v", got, want)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a pack was swept: %v", err)
	}
	if again, _ := SweepTemporaries(dir); len(again) > 0 {
		t.Fatalf("left %v", again)
	}
}
