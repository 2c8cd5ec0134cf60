package daemon

import (
	"testing"

	"github.com/megaengine/megaengine/protocol/identity"
)

// A node announces its private addresses only on a network of its own;
// one that talks to the public network (a public bootstrap node) and has
// no public address or proven observed one announces none; --announce wins.
func TestAnnounceOnlyUsableAddresses(t *testing.T) {
	alone := start(t, cfg(shortRoot(t), "alone"))
	if got := alone.announceAddrs(); len(got) != 1 || got[0] != alone.tr.LocalAddr().String() {
		t.Fatalf("a node on a private network of its own announces %v", got)
	}
	k, _ := identity.GenerateKey()
	public := identity.Addr{ID: k.ID(), HostPort: "198.18.0.1:9"} // nobody answers there
	behind := start(t, cfg(shortRoot(t), "behind", public))
	if got := behind.announceAddrs(); len(got) != 0 {
		t.Fatalf("a node on the public network without a public address announces %v", got)
	}
	c := cfg(shortRoot(t), "told", public)
	c.Announce = []string{"203.0.113.7:9000"}
	told := start(t, c)
	if got := told.announceAddrs(); len(got) != 1 || got[0] != "203.0.113.7:9000" {
		t.Fatalf("--announce gives %v", got)
	}
}
