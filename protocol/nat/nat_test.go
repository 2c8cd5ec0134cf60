package nat

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

func TestRoundTrip(t *testing.T) {
	k, _ := identity.GenerateKey()
	id := k.ID()
	nonce := bytes.Repeat([]byte{7}, NonceSize)
	for _, m := range []Message{
		&Observed{Addr: "198.18.0.1:9000", LAN: []string{"10.0.1.2:9000"}},
		&DialBack{Nonce: nonce},
		&Reply{OK: true, Addr: "198.18.1.1:4000"},
		&Introduce{Node: id.PublicKey(), Addr: "198.18.1.1:4000", Nonce: nonce},
	} {
		var buf bytes.Buffer
		if err := Write(&buf, m); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		var err error
		switch m.(type) {
		case *Observed:
			err = Read(&buf, &Observed{})
		case *DialBack:
			err = Read(&buf, &DialBack{})
		case *Reply:
			err = Read(&buf, &Reply{})
		case *Introduce:
			err = Read(&buf, &Introduce{})
		}
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
	}
}

func TestRejects(t *testing.T) {
	for _, m := range []Message{
		&Observed{Addr: "nowhere"},
		&Observed{Addr: "198.18.0.1:1", LAN: []string{"198.18.0.2:1"}}, // a public address as lan
		&DialBack{Nonce: []byte{1}},
		&Introduce{Node: []byte{1, 2}},
		&Reply{Addr: "x"},
	} {
		if _, err := Encode(m); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%#v: got %v", m, err)
		}
	}
	if err := Read(bytes.NewReader([]byte{0xff, 0xff}), &Reply{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize frame: %v", err)
	}
}

func TestProbeAndPublic(t *testing.T) {
	n := bytes.Repeat([]byte{9}, NonceSize)
	p := Probe(n)
	if p[0]&0x40 != 0 {
		t.Fatal("probe has the QUIC fixed bit set")
	}
	if got, ok := ParseProbe(p); !ok || !bytes.Equal(got, n) {
		t.Fatal("probe does not parse")
	}
	for s, want := range map[string]bool{"198.18.0.1": true, "203.0.113.9": true, "10.0.0.1": false, "192.168.1.1": false,
		"100.64.0.1": false, "127.0.0.1": false, "169.254.1.1": false, "::1": false, "2001:db8::1": true, "fd00::1": false} {
		if Public(netip.MustParseAddr(s)) != want {
			t.Errorf("Public(%s) != %v", s, want)
		}
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, &Observed{Addr: "198.18.0.1:9000", LAN: []string{"10.0.1.2:9000"}})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 3, 0xa1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []Message{&Observed{}, &DialBack{}, &Reply{}, &Introduce{}} {
			if err := Read(bytes.NewReader(b), m); err == nil {
				if err := m.Validate(); err != nil {
					t.Fatalf("decoded but invalid: %v", err)
				}
			}
		}
	})
}
