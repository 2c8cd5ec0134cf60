package gossip

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// countingNet records what is sent to each peer.
type countingNet struct {
	mu    sync.Mutex
	peers []identity.NodeID
	sent  map[identity.NodeID]int
}

func (n *countingNet) Peers() []identity.NodeID { return n.peers }
func (n *countingNet) Send(to identity.NodeID, _ []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent[to]++
	return nil
}
func (n *countingNet) SendSnapshot(identity.NodeID, [][]byte) error { return nil }
func (n *countingNet) Disconnect(identity.NodeID, string)           {}

// timers is a virtual AfterFunc: fire runs what is due.
type timers struct {
	clock *fakeClock
	due   []timer
}

type timer struct {
	at time.Time
	f  func()
}

func (ts *timers) after(d time.Duration, f func()) {
	ts.due = append(ts.due, timer{ts.clock.Now().Add(d), f})
}

// advance moves the clock by d, running each timer at its time, in order.
func (ts *timers) advance(d time.Duration) {
	end := ts.clock.Now().Add(d)
	for {
		i := -1
		for j, t := range ts.due {
			if !t.at.After(end) && (i < 0 || t.at.Before(ts.due[i].at)) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		t := ts.due[i]
		ts.due = append(ts.due[:i], ts.due[i+1:]...)
		if now := ts.clock.Now(); t.at.After(now) {
			ts.clock.Advance(t.at.Sub(now))
		}
		t.f()
	}
	if now := ts.clock.Now(); end.After(now) {
		ts.clock.Advance(end.Sub(now))
	}
}

// What a node sends one peer never exceeds the pace the receivers allow,
// however much comes in; the excess waits in a bounded queue.
func TestSendsArePaced(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	ts := &timers{clock: clock}
	peer, _ := identity.GenerateKey()
	net := &countingNet{peers: []identity.NodeID{peer.ID()}, sent: map[identity.NodeID]int{}}
	k, _ := identity.GenerateKey()
	e := New(Config{Key: k, Store: NewMemStore(), Net: net, Clock: clock.Now, AfterFunc: ts.after,
		SendRate: 10, SendBurst: 5, SendQueue: 20})
	e.mu.Lock()
	for range 100 {
		e.sendLocked(peer.ID(), []byte("x"))
	}
	e.mu.Unlock()
	if got := net.sent[peer.ID()]; got != 5 {
		t.Fatalf("%d sent at once, want the burst of 5", got)
	}
	ts.advance(time.Second)
	if got := net.sent[peer.ID()]; got != 15 {
		t.Fatalf("%d sent after a second, want 5 + 10", got)
	}
	ts.advance(10 * time.Second)
	if got, dropped := net.sent[peer.ID()], e.Stats().Dropped; got != 25 || dropped != 75 {
		t.Fatalf("%d sent in all and %d dropped; want 25 (burst and a queue of 20) and 75", got, dropped)
	}
}

// One peer brings at most IntroNodes unknown nodes into the table per
// hour; news of nodes already known is not counted.
func TestIntroductionsAreCapped(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	k, _ := identity.GenerateKey()
	store := NewMemStore()
	e := New(Config{Key: k, Store: store, Net: &countingNet{sent: map[identity.NodeID]int{}}, Clock: clock.Now,
		IntroNodes: 3, DisableRelay: true})
	stranger, _ := identity.GenerateKey()
	var keys []*identity.Key
	for i := range 6 {
		nk, _ := identity.GenerateKey()
		keys = append(keys, nk)
		env, _ := wire.Sign(nk, clock.Now(), nodeAnn(fmt.Sprint("fake", i)))
		raw, _ := env.Marshal()
		e.HandleMessage(stranger.ID(), raw, false)
	}
	if st := e.Stats(); st.Accepted != 3 || st.Capped != 3 {
		t.Fatalf("%+v: want 3 accepted and 3 over the cap", st)
	}
	// A newer announcement of a node already in the table passes.
	env, _ := wire.Sign(keys[0], clock.Now().Add(time.Second), nodeAnn("fake0 again"))
	raw, _ := env.Marshal()
	e.HandleMessage(stranger.ID(), raw, false)
	if st := e.Stats(); st.Accepted != 4 {
		t.Fatalf("%+v: an update of a known node was capped", st)
	}
	// An hour later the budget is back.
	clock.Advance(introWindow + time.Second)
	nk, _ := identity.GenerateKey()
	env, _ = wire.Sign(nk, clock.Now(), nodeAnn("later"))
	raw, _ = env.Marshal()
	e.HandleMessage(stranger.ID(), raw, false)
	if st := e.Stats(); st.Accepted != 5 {
		t.Fatalf("%+v: the budget did not come back after an hour", st)
	}
}
