package replica

import "testing"

// TestAgreed: the head a threshold of delegates agree on, on the history
// a ← b ← c with a side branch a ← x.
func TestAgreed(t *testing.T) {
	parent := map[string]string{"b": "a", "c": "b", "x": "a"}
	contains := func(anc, desc string) bool {
		for n := desc; n != ""; n = parent[n] {
			if n == anc {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		name      string
		tips      []string
		threshold int
		want      int
	}{
		{"one delegate ahead, threshold 1: the newest", []string{"b", "c"}, 1, 1},
		{"one delegate ahead, threshold 2: what both have", []string{"b", "c"}, 2, 0},
		{"three, two at c, threshold 2", []string{"a", "c", "c"}, 2, 1},
		{"diverged, threshold 1: the first in order", []string{"x", "c"}, 1, 0},
		{"diverged, threshold 2, a third at the fork point", []string{"x", "c", "a"}, 2, 2},
		{"diverged, threshold 2, nobody agrees: the first with a tip", []string{"", "x", "c"}, 2, 1},
		{"a delegate without the branch", []string{"", "b"}, 1, 1},
	} {
		if got := agreed(tc.tips, tc.threshold, contains); got != tc.want {
			t.Errorf("%s: agreed(%v, %d) = %d, want %d", tc.name, tc.tips, tc.threshold, got, tc.want)
		}
	}
}
