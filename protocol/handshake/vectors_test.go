package handshake

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Regenerate with: go test ./protocol/handshake/ -run TestVectors -update
var update = flag.Bool("update", false, "rewrite spec/vectors/handshake.json from the inputs in this file")

var vectorPath = filepath.Join("..", "..", "spec", "vectors", "handshake.json")

// The fixed inputs: RFC 8032 test keys 1 (initiator) and 2 (responder), a
// binding 00 01 … 1f, and ephemeral private keys taken from the Noise
// protocol's published cacophony vectors.
const (
	vecInitiatorSeed      = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	vecResponderSeed      = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
	vecBinding            = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	vecInitiatorEphemeral = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"
	vecResponderEphemeral = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"
)

type vectorParty struct {
	Seed             string `json:"ed25519_seed"`
	PublicKey        string `json:"ed25519_public"`
	DID              string `json:"did"`
	X25519Private    string `json:"x25519_private"`
	X25519Public     string `json:"x25519_public"`
	EphemeralPrivate string `json:"ephemeral_private"`
	Payload          string `json:"payload"`
}

type vectorFile struct {
	Comment         string      `json:"comment"`
	Protocol        string      `json:"protocol"`
	PrologueVersion string      `json:"prologue_version"`
	Binding         string      `json:"binding"`
	Prologue        string      `json:"prologue"`
	Initiator       vectorParty `json:"initiator"`
	Responder       vectorParty `json:"responder"`
	Message1        string      `json:"message1"`
	Message2        string      `json:"message2"`
	Frame1          string      `json:"frame1"`
	Frame2          string      `json:"frame2"`
	HandshakeHash   string      `json:"handshake_hash"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func vectorKey(t *testing.T, seed string) *identity.Key {
	t.Helper()
	k, err := identity.KeyFromSeed(unhex(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func party(t *testing.T, seed, eph string) vectorParty {
	k := vectorKey(t, seed)
	p, err := encodePayload(k.ID())
	if err != nil {
		t.Fatal(err)
	}
	return vectorParty{
		Seed: seed, PublicKey: hex.EncodeToString(k.ID().PublicKey()), DID: k.ID().String(),
		X25519Private: hex.EncodeToString(k.X25519Private()), X25519Public: hex.EncodeToString(k.X25519Public()),
		EphemeralPrivate: eph, Payload: hex.EncodeToString(p),
	}
}

// recorder keeps a copy of everything written to a connection.
type recorder struct {
	net.Conn
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.out.Write(p)
	return r.Conn.Write(p)
}

// generateVectors runs the package's own Initiate and Respond over net.Pipe
// with the fixed inputs and records the bytes each side writes.
func generateVectors(t *testing.T) vectorFile {
	ik, rk := vectorKey(t, vecInitiatorSeed), vectorKey(t, vecResponderSeed)
	bind := unhex(t, vecBinding)
	c1, c2 := net.Pipe()
	r1, r2 := &recorder{Conn: c1}, &recorder{Conn: c2}
	var (
		wg           sync.WaitGroup
		respErr      error
		iHash, rHash []byte
	)
	wg.Go(func() {
		defer c2.Close()
		_, rHash, respErr = respond(context.Background(), r2, rk, bind, "", bytes.NewReader(unhex(t, vecResponderEphemeral)), nil)
	})
	_, iHash, err := initiate(context.Background(), r1, ik, rk.ID(), bind, "", bytes.NewReader(unhex(t, vecInitiatorEphemeral)))
	c1.Close()
	wg.Wait()
	if err != nil || respErr != nil {
		t.Fatalf("generating: %v / %v", err, respErr)
	}
	if !bytes.Equal(iHash, rHash) {
		t.Fatal("the two sides disagree on the handshake hash")
	}
	f1, f2 := r1.out.Bytes(), r2.out.Bytes()
	return vectorFile{
		Comment: "MegaEngine Noise IK handshake, see spec/handshake.md. frameN = 2-byte big-endian length || messageN. " +
			"Ephemeral keys are the X25519 private keys the Noise DH function draws from its random source. " +
			"handshake_hash is the Noise h after message 2 (informative; not used by the protocol).",
		Protocol: ProtocolName, PrologueVersion: PrologueVersion,
		Binding: vecBinding, Prologue: hex.EncodeToString(prologue(bind, "")),
		Initiator: party(t, vecInitiatorSeed, vecInitiatorEphemeral),
		Responder: party(t, vecResponderSeed, vecResponderEphemeral),
		Message1:  hex.EncodeToString(f1[2:]), Message2: hex.EncodeToString(f2[2:]),
		Frame1: hex.EncodeToString(f1), Frame2: hex.EncodeToString(f2),
		HandshakeHash: hex.EncodeToString(iHash),
	}
}

func TestVectors(t *testing.T) {
	if *update {
		v := generateVectors(t)
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	checkVectorInputs(t, v)
	t.Run("responder", func(t *testing.T) { replayResponder(t, v) })
	t.Run("initiator", func(t *testing.T) { replayInitiator(t, v) })
	t.Run("pair", func(t *testing.T) {
		if got := generateVectors(t); got != v {
			t.Fatalf("a live run differs from the file:\n got %+v\nwant %+v", got, v)
		}
	})
}

// checkVectorInputs checks the derived keys, payloads and prologue.
func checkVectorInputs(t *testing.T, v vectorFile) {
	if v.Protocol != ProtocolName || v.PrologueVersion != PrologueVersion {
		t.Fatalf("protocol %q, prologue version %q", v.Protocol, v.PrologueVersion)
	}
	if v.Prologue != hex.EncodeToString(prologue(unhex(t, v.Binding), "")) {
		t.Fatal("prologue")
	}
	for _, p := range []vectorParty{v.Initiator, v.Responder} {
		if got := party(t, p.Seed, p.EphemeralPrivate); got != p {
			t.Fatalf("party derived from seed:\n got %+v\nwant %+v", got, p)
		}
	}
	if v.Frame1 != "0086"+v.Message1 || v.Frame2 != "0056"+v.Message2 {
		t.Fatalf("frames: lengths %d and %d, want 134 and 86", len(v.Message1)/2, len(v.Message2)/2)
	}
}

// replayResponder feeds frame1 to a responder with the fixed ephemeral key
// and expects frame2 byte for byte.
func replayResponder(t *testing.T, v vectorFile) {
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(unhex(t, v.Frame1)), &out}
	res, hash, err := respond(context.Background(), rw, vectorKey(t, v.Responder.Seed), unhex(t, v.Binding), "",
		bytes.NewReader(unhex(t, v.Responder.EphemeralPrivate)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Peer.String() != v.Initiator.DID || res.PeerVersion != 1 {
		t.Fatalf("result %+v", res)
	}
	if got := hex.EncodeToString(out.Bytes()); got != v.Frame2 {
		t.Fatalf("frame2\n got %s\nwant %s", got, v.Frame2)
	}
	if hex.EncodeToString(hash) != v.HandshakeHash {
		t.Fatal("handshake hash")
	}
}

// replayInitiator feeds frame2 to an initiator with the fixed ephemeral key
// and expects it to have written frame1 byte for byte.
func replayInitiator(t *testing.T, v vectorFile) {
	var out bytes.Buffer
	rw := struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(unhex(t, v.Frame2)), &out}
	remote, err := identity.ParseNodeID(v.Responder.DID)
	if err != nil {
		t.Fatal(err)
	}
	res, hash, err := initiate(context.Background(), rw, vectorKey(t, v.Initiator.Seed), remote, unhex(t, v.Binding), "",
		bytes.NewReader(unhex(t, v.Initiator.EphemeralPrivate)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Peer != remote || res.PeerVersion != 1 {
		t.Fatalf("result %+v", res)
	}
	if got := hex.EncodeToString(out.Bytes()); got != v.Frame1 {
		t.Fatalf("frame1\n got %s\nwant %s", got, v.Frame1)
	}
	if hex.EncodeToString(hash) != v.HandshakeHash {
		t.Fatal("handshake hash")
	}
}
