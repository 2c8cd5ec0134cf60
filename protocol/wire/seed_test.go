package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/cborx"
)

func vectorSeedRequest(t testing.TB) *SeedRequest {
	t.Helper()
	r, err := SignSeedRequest(vectorKey(), vectorRepo(), vectorTime)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSeedRequestRoundTrip(t *testing.T) {
	r := vectorSeedRequest(t)
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSeedRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Repo != r.Repo || got.Requester != r.Requester || got.Timestamp != r.Timestamp || !bytes.Equal(got.Signature, r.Signature) {
		t.Fatalf("decoded %+v, want %+v", got, r)
	}
	if err := got.Fresh(vectorTime.Add(MaxSeedSkew - time.Second)); err != nil {
		t.Fatal(err)
	}
}

// A request that is not the requester's, not canonical, too large or
// stale is rejected with its class of error.
func TestSeedRequestRejects(t *testing.T) {
	r := vectorSeedRequest(t)
	forged := *r
	forged.Requester = otherKey().ID() // signed by another key
	fb, err := forged.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	extra, err := cborx.Marshal(map[int]any{1: r.Repo.Multihash(), 2: r.Requester[:], 3: r.Timestamp, 4: r.Signature, 5: 1})
	if err != nil {
		t.Fatal(err)
	}
	short := *r
	short.Signature = r.Signature[:10]
	sb, _ := cborx.Marshal(seedRequestCBOR{r.Repo.Multihash(), r.Requester[:], r.Timestamp, short.Signature})
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"another's key", fb, ErrBadSignature},
		{"unknown key", extra, ErrMalformed},
		{"short signature", sb, ErrInvalid},
		{"oversize", make([]byte, MaxSeedFrame+1), ErrTooLarge},
		{"not cbor", []byte{0xff}, ErrMalformed},
	} {
		if _, err := UnmarshalSeedRequest(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := r.Fresh(vectorTime.Add(MaxSeedSkew + time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("stale request: %v", err)
	}
	if err := r.Fresh(vectorTime.Add(-MaxSeedSkew - time.Second)); !errors.Is(err, ErrFutureTimestamp) {
		t.Errorf("future request: %v", err)
	}
}

func TestSeedFrames(t *testing.T) {
	var buf bytes.Buffer
	rep := &SeedReply{Code: SeedOverBudget, Reason: "budget used up"}
	b, err := rep.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteSeedFrame(&buf, b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSeedFrame(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := UnmarshalSeedReply(got); err != nil || *r != *rep {
		t.Fatalf("reply %+v, %v", r, err)
	}
	if _, err := ReadSeedFrame(bytes.NewReader([]byte{0xff, 0xff})); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a frame over MaxSeedFrame: %v", err)
	}
	if err := WriteSeedFrame(&buf, make([]byte, MaxSeedFrame+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("writing a frame over MaxSeedFrame: %v", err)
	}
	long := &SeedReply{Reason: string(make([]byte, MaxSeedReason+1))}
	if _, err := long.Marshal(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a reason over MaxSeedReason: %v", err)
	}
}

func FuzzSeedRequest(f *testing.F) {
	b, err := vectorSeedRequest(f).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalSeedRequest(b)
		if err != nil {
			checkClassified(t, err)
			return
		}
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted request re-encodes differently: %x, %v", again, err)
		}
	})
}

func FuzzSeedReply(f *testing.F) {
	b, _ := (&SeedReply{Code: SeedAccepted, Reason: ""}).Marshal()
	f.Add(b)
	b, _ = (&SeedReply{Code: SeedNotAccepting, Reason: "this node takes no seed requests"}).Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalSeedReply(b)
		if err != nil {
			checkClassified(t, err)
			return
		}
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted reply re-encodes differently: %x, %v", again, err)
		}
	})
}
