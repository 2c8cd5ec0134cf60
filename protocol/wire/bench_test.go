package wire

import (
	"fmt"
	"testing"
)

func BenchmarkSign(b *testing.B) {
	key := vectorKey()
	body := vectorNode()
	b.ReportAllocs()
	for b.Loop() {
		e, err := Sign(key, vectorTime, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceive: what a receiver does with an envelope (see open).
func BenchmarkReceive(b *testing.B) {
	enc := mustMarshal(b, mustSign(b, vectorKey(), vectorNode()))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := open(enc, vectorTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRefs(b *testing.B) {
	key := vectorKey()
	refs := make([]Ref, 1000)
	for i := range refs {
		refs[i] = Ref{Name: fmt.Sprintf("refs/heads/feature/%04d", 999-i), OID: make([]byte, 20)}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignRefs(key, vectorRepo(), 1, refs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenSignedRefs(b *testing.B) {
	refs := make([]Ref, 1000)
	for i := range refs {
		refs[i] = Ref{Name: fmt.Sprintf("refs/heads/feature/%04d", i), OID: make([]byte, 20)}
	}
	s, err := SignRefs(vectorKey(), vectorRepo(), 1, refs)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := s.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenSignedRefs(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEnvelope: what a receiver does before it knows whether
// it has the message already: decode, then the id of the signed bytes.
func BenchmarkDecodeEnvelope(b *testing.B) {
	enc := mustMarshal(b, mustSign(b, vectorKey(), vectorNode()))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := Unmarshal(enc)
		if err != nil {
			b.Fatal(err)
		}
		_ = e.ID()
	}
}
