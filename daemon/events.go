package daemon

import (
	"slices"
	"sync"

	"github.com/megaengine/megaengine/rpc"
)

// subscriberBuffer is how many events a slow subscriber may lag behind
// before events are dropped for it (never blocking the node).
const subscriberBuffer = 256

// broker fans events out to RPC subscribers.
type broker struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch     chan rpc.Event
	types  []string
	closed bool
}

func newBroker() *broker { return &broker{subs: map[*subscriber]struct{}{}} }

func (b *broker) subscribe(types []string) (<-chan rpc.Event, func()) {
	s := &subscriber{ch: make(chan rpc.Event, subscriberBuffer), types: types}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !s.closed {
			s.closed = true
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

func (b *broker) publish(ev rpc.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if len(s.types) > 0 && !slices.Contains(s.types, ev.Type) {
			continue
		}
		select {
		case s.ch <- ev:
		default: // a subscriber that does not keep up loses events, not the node
		}
	}
}

// closeAll ends every subscription (daemon shutdown).
func (b *broker) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.closed = true
		close(s.ch)
		delete(b.subs, s)
	}
}
