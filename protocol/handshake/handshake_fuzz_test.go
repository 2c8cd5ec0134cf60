package handshake

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// The vector inputs give the fuzzers valid seeds; hard-coded so the fuzz
// targets do not depend on the vectors file.
var (
	fuzzResponderSeed = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
	fuzzInitiatorSeed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)

func fuzzKey(f *testing.F, seed string) *identity.Key {
	b, err := hex.DecodeString(seed)
	if err != nil {
		f.Fatal(err)
	}
	k, err := identity.KeyFromSeed(b)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// validFrame1 is a real first message from the initiator key to the
// responder key under binding.
func validFrame1(f *testing.F, ik, rk *identity.Key, binding []byte) []byte {
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(nil), &out}
	// The initiator fails reading message 2 from the empty reader; message 1
	// is already written by then.
	if _, err := Initiate(context.Background(), rw, ik, rk.ID(), binding); !errors.Is(err, ErrHandshakeClosed) {
		f.Fatalf("making a seed: %v", err)
	}
	return out.Bytes()
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x00, 0x03, 'a', 'b', 'c'})
	f.Add([]byte{0x00, 0x00})
	f.Add([]byte{0xff, 0xff, 0x01})
	f.Add([]byte{0x04, 0x00})
	f.Add([]byte{0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := ReadFrame(bytes.NewReader(data))
		if err != nil {
			if msg != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		n := int(data[0])<<8 | int(data[1])
		if n < 1 || n > MaxFrameSize || len(msg) != n || !bytes.Equal(msg, data[2:2+n]) {
			t.Fatalf("accepted a %d-byte frame from header %x", len(msg), data[:2])
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, msg); err != nil || !bytes.Equal(buf.Bytes(), data[:2+n]) {
			t.Fatalf("WriteFrame does not reproduce the frame: %v", err)
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	ik := fuzzKey(f, fuzzInitiatorSeed)
	good, err := encodePayload(ik.ID())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(append([]byte{0xa2, 0x01, 0x18, 0x01}, good[3:]...)) // non-canonical version
	f.Add([]byte{0xa1, 0x01, 0x01})
	f.Add([]byte{0xa0})
	f.Add([]byte{0xf6})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, id, err := DecodePayload(data)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error does not wrap ErrBadPayload: %v", err)
			}
			return
		}
		// Whatever is accepted is canonical, versioned and a valid id.
		again, err := cborx.Marshal(p)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical payload %x", data)
		}
		if p.Version < 1 || !bytes.Equal(id[:], p.Key) {
			t.Fatalf("accepted %+v", p)
		}
		if _, err := identity.NodeIDFromPublicKey(p.Key); err != nil {
			t.Fatalf("accepted an invalid key: %v", err)
		}
	})
}

func FuzzRespond(f *testing.F) {
	ik, rk := fuzzKey(f, fuzzInitiatorSeed), fuzzKey(f, fuzzResponderSeed)
	binding := testBinding(5)
	frame1 := validFrame1(f, ik, rk, binding)
	f.Add(frame1)
	f.Add(frame1[:len(frame1)-1])
	f.Add(append([]byte{0x00, 0x01}, 0x00))
	f.Add([]byte{0xff, 0xff})
	f.Add(append(bytes.Clone(frame1), 0x00, 0x01, 0x02))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), &out}
		res, err := Respond(context.Background(), rw, rk, binding)
		if err != nil {
			if out.Len() != 0 {
				t.Fatalf("responder wrote %d bytes before failing: %v", out.Len(), err)
			}
			return
		}
		// Only a message proving a static key and naming its Ed25519 key
		// gets through.
		if res.Peer.IsZero() || res.PeerVersion < 1 || out.Len() != 2+86 {
			t.Fatalf("accepted %+v, answered %d bytes", res, out.Len())
		}
	})
}
