package wire

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/megaengine/megaengine/protocol/cborx"
)

// envelopeCBOR and envelopeSignedCBOR are the envelope and its signed
// part as the general codec sees them: the hand-written codec must agree.
type envelopeCBOR struct {
	Version   uint64 `cbor:"1,keyasint"`
	Type      uint64 `cbor:"2,keyasint"`
	Origin    []byte `cbor:"3,keyasint"`
	Timestamp uint64 `cbor:"4,keyasint"`
	Body      []byte `cbor:"5,keyasint"`
	Signature []byte `cbor:"6,keyasint"`
	TTL       uint64 `cbor:"7,keyasint"`
}

type envelopeSignedCBOR struct {
	Version   uint64 `cbor:"1,keyasint"`
	Type      uint64 `cbor:"2,keyasint"`
	Origin    []byte `cbor:"3,keyasint"`
	Timestamp uint64 `cbor:"4,keyasint"`
	Body      []byte `cbor:"5,keyasint"`
}

// The hand-written encodings are byte for byte the general codec's, for
// integers of every head size and bodies of every length head.
func TestEnvelopeEncodingMatchesCodec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ints := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	for k := range 2000 {
		e := &Envelope{
			Version:   ints[rng.IntN(len(ints))],
			Type:      MsgType(ints[rng.IntN(len(ints))]),
			Origin:    vectorKey().ID(),
			Timestamp: ints[rng.IntN(len(ints))] + uint64(rng.IntN(3)),
			Body:      make([]byte, []int{0, 1, 23, 24, 255, 256, 1000}[k%7]),
			Signature: make([]byte, 64),
			TTL:       uint8(rng.IntN(MaxTTL + 1)),
		}
		if k%5 == 0 {
			e.Type, e.Signature = TypePrune, []byte{}
		}
		got, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, err := cborx.Marshal(envelopeCBOR{e.Version, uint64(e.Type), e.Origin[:], e.Timestamp, e.Body, e.Signature, uint64(e.TTL)})
		if err != nil || string(got) != string(want) {
			t.Fatalf("%+v: encoded %x, the codec says %x (%v)", e, got, want, err)
		}
		sb, _ := e.SignedBytes()
		core, _ := cborx.Marshal(envelopeSignedCBOR{e.Version, uint64(e.Type), e.Origin[:], e.Timestamp, e.Body})
		if want := domainBytes(GossipDomain, core); string(sb) != string(want) {
			t.Fatalf("%+v: signed bytes %x, the codec says %x", e, sb, want)
		}
	}
}

// Whatever the fast reader accepts, the general strict decoder accepts
// with the same values.
func FuzzEnvelopeReader(f *testing.F) {
	seedEnvelopes(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := readCanonicalEnvelope(b)
		if !ok {
			return
		}
		var slow envelopeDecodeCBOR
		if err := cborx.Unmarshal(b, &slow); err != nil {
			t.Fatalf("the fast reader accepted %x, the decoder says %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%x: fast %+v, decoder %+v", b, fast, slow)
		}
	})
}

// Whatever the fast NodeAnnouncement reader accepts, the general strict
// decoder accepts with the same values.
func FuzzNodeAnnouncementReader(f *testing.F) {
	for _, a := range []*NodeAnnouncement{vectorNode(), {Addresses: []string{}, Features: []string{}}} {
		f.Add(mustBody(f, a))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := readCanonicalNodeAnnouncement(b)
		if !ok {
			return
		}
		var slow NodeAnnouncement
		if err := cborx.UnmarshalCanonical(b, &slow); err != nil {
			t.Fatalf("the fast reader accepted %x, the decoder says %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%x: fast %+v, decoder %+v", b, fast, slow)
		}
	})
}
