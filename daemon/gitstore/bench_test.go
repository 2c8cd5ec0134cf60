package gitstore

import (
	"bytes"
	"testing"
)

// countingWriter counts bytes.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// benchRepo is a replica with a generated history of a few thousand
// objects (100 files of ~3.4 KB, 300 commits changing 5 files each).
func benchRepo(b *testing.B) *replicaPair {
	b.Helper()
	p := newReplicaPair(b, &Runner{}, 300)
	p.g.tb = b
	return p
}

// BenchmarkPackUpdate: the thin pack of a one-line commit against the
// previous tip, as sent to a peer that is one commit behind.
func BenchmarkPackUpdate(b *testing.B) {
	p := benchRepo(b)
	ctx := b.Context()
	old := refOIDs(p.refs)
	p.g.oneLine()
	refs2, err := p.src.Import(ctx, p.g.dir, nsA)
	if err != nil {
		b.Fatal(err)
	}
	wants := refOIDs(refs2)
	var w countingWriter
	for b.Loop() {
		if _, err := p.src.PackObjects(ctx, wants, old, &w, PackOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.n)/float64(b.N), "packB/op")
}

// BenchmarkIndexPack: storing the full pack of the generated repository
// in an empty replica (timer stopped while the replica is made).
func BenchmarkIndexPack(b *testing.B) {
	p := benchRepo(b)
	ctx := b.Context()
	var pack bytes.Buffer
	n, err := p.src.PackObjects(ctx, refOIDs(p.refs), nil, &pack, PackOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(pack.Len()))
	r := &Runner{}
	for b.Loop() {
		b.StopTimer()
		dst := newBare(b, r)
		b.StartTimer()
		if err := dst.IndexPack(ctx, bytes.NewReader(pack.Bytes()), IndexOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "objects")
	b.ReportMetric(float64(pack.Len()), "packB")
}

// BenchmarkFullPack: packing the whole generated repository (no haves).
func BenchmarkFullPack(b *testing.B) {
	p := benchRepo(b)
	ctx := b.Context()
	tips := refOIDs(p.refs)
	var w countingWriter
	for b.Loop() {
		if _, err := p.src.PackObjects(ctx, tips, nil, &w, PackOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.n)/float64(b.N), "packB/op")
}
