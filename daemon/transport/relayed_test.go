package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
)

// A connection inside a byte pipe (what a relay joins) authenticates end
// to end, carries streams, and reports the relayed path.
func TestRelayedConnection(t *testing.T) {
	a, _ := newNode(t, nil)
	b, rb := newNode(t, nil)
	ca, cb := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan error, 1)
	go func() {
		_, err := b.AcceptOver(ctx, cb, a.ID())
		accepted <- err
	}()
	p, err := a.DialOver(ctx, ca, b.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if p.Path() != PathRelayed || b.Peer(a.ID()).Path() != PathRelayed {
		t.Fatalf("paths %s / %s", p.Path(), b.Peer(a.ID()).Path())
	}
	s, err := p.OpenUni(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("over the relay"))
	s.Close()
	testutil.WaitFor(t, "b to receive the stream", 5*time.Second, func() bool {
		_, _, _, u := rb.snapshot()
		return len(u) == 1 && string(u[0][1:]) == "over the relay"
	})
	// A node that proves another id than the one named is refused.
	c, _ := newNode(t, nil)
	x, y := net.Pipe()
	go c.DialOver(ctx, x, b.ID())
	if _, err := b.AcceptOver(ctx, y, a.ID()); err == nil {
		t.Fatal("accepted a relayed peer that is not the one the relay named")
	}
}
