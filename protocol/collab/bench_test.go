package collab

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkFoldIssue1000 folds an issue of 1,000 changes (already parsed
// and verified, as a cache miss in the daemon would after loading them).
func BenchmarkFoldIssue1000(b *testing.B) {
	set := randomHistory(b, rand.New(rand.NewPCG(3, 4)), 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := FoldIssue(set[0].ID(), set, delegates); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAndFoldIssue1000 adds decoding and signature checks of
// the 1,000 blobs: the cost of folding from git with nothing cached.
func BenchmarkParseAndFoldIssue1000(b *testing.B) {
	set := randomHistory(b, rand.New(rand.NewPCG(3, 4)), 1000)
	blobs := make([][]byte, len(set))
	for i, c := range set {
		blobs[i] = c.Marshal()
	}
	b.ReportAllocs()
	for b.Loop() {
		parsed := make([]*Change, len(blobs))
		for i, raw := range blobs {
			c, err := ParseChange(raw)
			if err != nil {
				b.Fatal(err)
			}
			parsed[i] = c
		}
		if _, _, err := FoldIssue(parsed[0].ID(), parsed, delegates); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseChange decodes and verifies one comment change.
func BenchmarkParseChange(b *testing.B) {
	root := open(b, bob, "t")
	raw := mk(b, carol, []*Change{root}, &Comment{Body: "a comment of some length, as most are"}).Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChange(raw); err != nil {
			b.Fatal(err)
		}
	}
}
