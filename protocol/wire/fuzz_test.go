package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// Every decoder has a fuzz target. The properties: no panic; on success the
// result re-encodes to exactly the input (canonical) and passes its own
// checks; on failure the error is one of the package's classes.

var allErrors = []error{ErrTooLarge, ErrMalformed, ErrUnknownType, ErrBadSignature, ErrFutureTimestamp, ErrExpired, ErrBadVersion, ErrInvalid}

func checkClassified(t *testing.T, err error) {
	t.Helper()
	for _, e := range allErrors {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("unclassified error: %v", err)
}

func seedEnvelopes(f *testing.F) {
	for _, b := range []Body{vectorNode(), vectorRepoAnn(), vectorActivity()} {
		f.Add(mustMarshal(f, mustSign(f, vectorKey(), b)))
	}
	for _, v := range vectorBodies(f) {
		if v.unsigned {
			f.Add(mustMarshal(f, vectorSign(f, vectorKey(), vectorTime, v.body, true)))
		}
	}
	for _, c := range invalidEnvelopeCases(f) {
		if !c.notInFile {
			f.Add(c.bytes)
		}
	}
}

func FuzzUnmarshalEnvelope(f *testing.F) {
	seedEnvelopes(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, body, err := open(b, vectorTime)
		if err != nil {
			checkClassified(t, err)
			if body != nil || (e != nil && !errors.Is(err, ErrUnknownType)) {
				t.Fatalf("result with error %v", err)
			}
			return
		}
		// Fuzzing cannot forge signatures, so success means a seed's
		// signed part with a different (unsigned) TTL or a non-canonical
		// but equivalent envelope encoding; either way the id and the
		// signed part are the seed's.
		verify := e.Verify
		if e.Unsigned() {
			verify = e.VerifyUnsigned
		}
		if err := verify(vectorTime); err != nil {
			t.Fatal(err)
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		e2, body2, err := open(again, vectorTime)
		if err != nil || e2.ID() != e.ID() || body2.Type() != body.Type() {
			t.Fatalf("re-encoded envelope does not open the same: %v", err)
		}
	})
}

// fuzzBody checks one body decoder.
func fuzzBody(t *testing.T, b []byte, decode func([]byte) (Body, error)) {
	body, err := decode(b)
	if err != nil {
		checkClassified(t, err)
		return
	}
	if err := body.Validate(); err != nil {
		t.Fatalf("decoded body does not validate: %v", err)
	}
	again, err := body.encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("accepted a non-canonical body:\n in  %x\n out %x", b, again)
	}
}

// decodeValid is what DecodeBody does for one type.
func decodeValid(typ MsgType) func([]byte) (Body, error) {
	return func(b []byte) (Body, error) {
		return (&Envelope{Type: typ, Body: b}).DecodeBody()
	}
}

func seedBodies(f *testing.F, typ MsgType, valid ...Body) {
	for _, b := range valid {
		f.Add(mustBody(f, b))
	}
	for _, c := range invalidEnvelopeCases(f) {
		if e, err := Unmarshal(c.bytes); err == nil && e.Type == typ {
			f.Add(e.Body)
		}
	}
}

func FuzzNodeAnnouncement(f *testing.F) {
	seedBodies(f, TypeNodeAnnouncement, vectorNode(), &NodeAnnouncement{Kind: KindRelay})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzBody(t, b, decodeValid(TypeNodeAnnouncement)) })
}

func FuzzRepoAnnouncement(f *testing.F) {
	seedBodies(f, TypeRepoAnnouncement, vectorRepoAnn(), &RepoAnnouncement{Repo: vectorRepo()})
	f.Fuzz(func(t *testing.T, b []byte) { fuzzBody(t, b, decodeValid(TypeRepoAnnouncement)) })
}

func FuzzActivityAnnouncement(f *testing.F) {
	seedBodies(f, TypeActivityAnnouncement, vectorActivity())
	f.Fuzz(func(t *testing.T, b []byte) { fuzzBody(t, b, decodeValid(TypeActivityAnnouncement)) })
}

func FuzzSignedRefs(f *testing.F) {
	b, err := vectorSignedRefs().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, c := range invalidSignedRefsCases(f) {
		if !c.notInFile {
			f.Add(c.bytes)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSignedRefs(b)
		if err != nil {
			checkClassified(t, err)
			return
		}
		if err := s.validate(); err != nil {
			t.Fatalf("decoded signed refs do not validate: %v", err)
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical signed refs")
		}
		if err := s.Verify(); err != nil {
			checkClassified(t, err)
		}
	})
}

func FuzzCheckRefName(f *testing.F) {
	for _, s := range []string{"refs/heads/main", "refs/heads/../x", "refs/heads/a.lock", "refs/heads/a b", "HEAD", "refs/heads/x\x00", "..", "refs/heads/a@{1}", "refs/tags/v1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckRefName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// Properties of every accepted name, stated independently of the
		// implementation: it stays under refs/ as a relative path.
		if !bytes.HasPrefix([]byte(name), []byte("refs/")) || len(name) > MaxRefNameLen {
			t.Fatalf("accepted %q", name)
		}
		for comp := range bytes.SplitSeq([]byte(name), []byte("/")) {
			if len(comp) == 0 || string(comp) == "." || string(comp) == ".." || comp[0] == '.' || bytes.HasSuffix(comp, []byte(".lock")) {
				t.Fatalf("accepted %q with component %q", name, comp)
			}
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c == 0x7f || bytes.IndexByte([]byte(`~^:?*[\`), c) >= 0 {
				t.Fatalf("accepted %q with byte %q", name, c)
			}
		}
	})
}

func FuzzRepoDoc(f *testing.F) {
	k, _ := identity.KeyFromSeed(make([]byte, 32))
	d, _ := SignRepoDoc(k, RepoDocFields{Root: make([]byte, 20), Name: "n", DefaultBranch: "main"})
	raw, _ := d.Marshal()
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := OpenRepoDoc(b)
		if err != nil {
			return
		}
		again, err := d.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted document does not re-encode to its input: %v", err)
		}
	})
}

func FuzzFetchFrames(f *testing.F) {
	var buf bytes.Buffer
	k, _ := identity.KeyFromSeed(make([]byte, 32))
	repo, _ := identity.NewRepoID(make([]byte, 20), k.ID())
	WriteFetchMessage(&buf, FrameRequest, FetchRequest{Repo: repo.Multihash(), Namespaces: [][]byte{}, Known: []KnownRefs{}, Haves: [][]byte{}})
	f.Add(buf.Bytes())
	f.Add([]byte{3, 0, 0, 0, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			typ, payload, err := ReadFetchFrame(r, FrameRequest, FrameHeader, FramePack, FrameEnd, FrameError)
			if err != nil {
				return
			}
			if len(payload) > MaxFrameSize(typ) {
				t.Fatalf("frame of %d bytes accepted for type %d", len(payload), typ)
			}
			switch typ {
			case FrameRequest:
				DecodeFetchRequest(payload)
			case FrameHeader:
				DecodeFetchHeader(payload)
			case FrameEnd:
				DecodeFetchEnd(payload)
			case FrameError:
				DecodeFetchError(payload)
			}
		}
	})
}

func FuzzDocChain(f *testing.F) {
	a, b := vectorKey(), otherKey()
	first, _ := SignRepoDoc(a, RepoDocFields{Root: make([]byte, 20), Name: "n", DefaultBranch: "main"})
	c := first.Change()
	c.Delegates, c.Threshold = append(c.Delegates, b.ID()), 2
	v2, _ := first.Next(c)
	v2, _ = v2.Sign(a)
	r1, _ := first.Marshal()
	r2, _ := v2.Marshal()
	f.Add(r1, r2)
	f.Fuzz(func(t *testing.T, first, later []byte) {
		chain, err := OpenDocChain(first, [][]byte{later})
		if err != nil {
			return
		}
		if chain.Len() != 2 || chain.Latest().Version() != 2 {
			t.Fatalf("accepted a chain of %d versions", chain.Len())
		}
		if _, err := chain.First().CheckNext(chain.Latest()); err != nil {
			t.Fatalf("accepted a version its predecessor does not authorize: %v", err)
		}
		again, err := chain.Latest().Marshal()
		if err != nil || !bytes.Equal(again, later) {
			t.Fatalf("accepted version does not re-encode to its input: %v", err)
		}
	})
}
