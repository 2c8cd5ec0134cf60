package main

import (
	"os"
	"path/filepath"
	"testing"
)

// MEGAENGINE_CPUPROFILE writes a profile go tool pprof reads; without it
// nothing is written.
func TestProfiled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	if code := profiled(path, func() int { return 3 }); code != 3 {
		t.Fatalf("profiled returned %d, want f's 3", code)
	}
	if b, err := os.ReadFile(path); err != nil || len(b) == 0 {
		t.Fatalf("no profile written: %v", err)
	}
	if code := profiled("", func() int { return 0 }); code != 0 {
		t.Fatal("profiled without a path changed f's result")
	}
}
