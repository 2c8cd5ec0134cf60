package transport

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/nat"
)

// After the handshake each side learns the address the other sees it at;
// on a private network (loopback here) it also learns the other's private
// addresses.
func TestObservedAddress(t *testing.T) {
	a, _ := newNode(t, nil)
	b, _ := newNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := a.Dial(ctx, addrOf(b))
	if err != nil {
		t.Fatal(err)
	}
	want := a.LocalAddr().AddrPort()
	testutil.WaitFor(t, "a to learn its observed address", 5*time.Second, func() bool { return p.Observed() == want })
	if got := a.ObservedAddrs(); len(got) != 1 || got[0] != want {
		t.Fatalf("ObservedAddrs %v, want [%v]", got, want)
	}
	if !slices.Contains(p.LAN(), b.LocalAddr().String()) {
		t.Fatalf("LAN %v lacks b's %s", p.LAN(), b.LocalAddr())
	}
	bp := b.Peer(a.ID())
	testutil.WaitFor(t, "b to learn its observed address", 5*time.Second, func() bool { return bp.Observed() == b.LocalAddr().AddrPort() })
}

// A probe packet sent from another socket reaches ExpectProbe's waiter;
// the QUIC side of the socket keeps working.
func TestProbeArrives(t *testing.T) {
	a, _ := newNode(t, nil)
	nonce := bytes.Repeat([]byte{5}, nat.NonceSize)
	deadline := time.After(5 * time.Second)
	arrived, stop := a.ExpectProbe(nonce)
	defer stop()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(a.LocalAddr().String()))
	// Send until the packet arrived (UDP may drop one).
	for {
		c.WriteToUDP(nat.Probe(nonce), to)
		select {
		case <-arrived:
			return
		case <-deadline:
			t.Fatal("no probe arrived in 5s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
