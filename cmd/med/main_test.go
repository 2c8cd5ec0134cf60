package main

import (
	"os"
	"path/filepath"
	"testing"
)

// MEGAENGINE_CPUPROFILE and MEGAENGINE_TRACE write files go tool pprof
// and go tool trace read; without them nothing is written.
func TestDiagnosed(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"MEGAENGINE_CPUPROFILE": filepath.Join(dir, "cpu.prof"),
		"MEGAENGINE_TRACE":      filepath.Join(dir, "trace.out"),
	}
	if code := diagnosed(func(k string) string { return env[k] }, func() int { return 3 }); code != 3 {
		t.Fatalf("diagnosed returned %d, want f's 3", code)
	}
	for _, path := range env {
		if b, err := os.ReadFile(path); err != nil || len(b) == 0 {
			t.Fatalf("nothing written to %s: %v", path, err)
		}
	}
	if code := diagnosed(func(string) string { return "" }, func() int { return 0 }); code != 0 {
		t.Fatal("diagnosed without files changed f's result")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(env) {
		t.Fatalf("%d files in %s, want %d", len(entries), dir, len(env))
	}
}
