// Package relay is the node's NAT policy (design D8, spec/nat.md): it
// finds out whether the node can be dialled (a relay sends a probe to the
// address it sees the node at, from another socket), serves those
// dial-backs and introductions when the node is a relay, punches holes
// for direct connections between two nodes behind NAT, and carries a
// rate- and time-limited relayed stream where punching fails.
package relay

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/nat"
)

// Reachability is what the node knows of whether others can dial it.
type Reachability int

// Reachability states.
const (
	Unknown     Reachability = iota // no relay has answered a dial-back yet
	Reachable                       // a relay's probe from another socket arrived
	Unreachable                     // a relay sent a probe and it did not arrive
)

func (r Reachability) String() string {
	switch r {
	case Reachable:
		return "reachable"
	case Unreachable:
		return "unreachable"
	}
	return "unknown"
}

// Config configures a Service.
type Config struct {
	Transport *transport.Transport
	// Relay makes the node serve dial-backs, introductions and relayed
	// streams (--relay).
	Relay bool
	// IsRelay reports whether the routing table knows id as a relay.
	IsRelay func(id identity.NodeID) bool
	// OnChange is called when the reachability changes.
	OnChange func(Reachability)
	Log      *slog.Logger
}

// Timing of reachability checks (spec/nat.md §2).
const (
	checkEvery   = 2 * time.Second // an unknown state is retried this often while relays are connected but none answered
	recheckEvery = 5 * time.Minute // how often a reachable node checks again; the longest retry gap
	retryFirst   = 15 * time.Second
	// probeWait is how long a probe may take to arrive before the node
	// counts as unreachable; one that arrives later still proves it
	// reachable, until the next check replaces its nonce.
	probeWait     = 3 * time.Second
	dialBackGap   = 5 * time.Second // a relay answers one dial-back per peer per gap
	streamTimeout = 10 * time.Second
)

// retryAfter is the wait after the failures-th check in a row whose probe
// did not arrive in time: retryFirst, doubling up to recheckEvery.
func retryAfter(failures int) time.Duration {
	d := retryFirst
	for i := 1; i < failures && d < recheckEvery; i++ {
		d *= 2
	}
	return min(d, recheckEvery)
}

// Service is the node's NAT policy; Serve runs its checks.
type Service struct {
	cfg Config
	t   *transport.Transport
	log *slog.Logger

	kick chan struct{} // Kick: a relay may have connected

	mu       sync.Mutex
	reach    Reachability
	next     time.Time                     // when the next check is due (zero: at once)
	noRelay  bool                          // the last check found no connected relay to ask
	failures int                           // checks in a row that did not prove the node reachable
	dialBack map[identity.NodeID]time.Time // last dial-back served per peer
	relayed  int                           // relayed streams carried now (relayed.go)
}

// New makes the service.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.IsRelay == nil {
		cfg.IsRelay = func(identity.NodeID) bool { return false }
	}
	return &Service{cfg: cfg, t: cfg.Transport, log: cfg.Log, kick: make(chan struct{}, 1), dialBack: map[identity.NodeID]time.Time{}}
}

// Kick tells Serve that a relay may have connected: a peer connected, or
// a node announced itself. A check that is due but found no relay to ask
// waits for this, not for a timer.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default: // already told
	}
}

// Reachability is the node's current knowledge of whether it can be dialled.
func (s *Service) Reachability() Reachability {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reach
}

// probe is a dial-back's nonce registered with the transport.
type probe struct {
	arrived <-chan struct{}
	stop    func()
}

// Serve checks reachability until ctx is done: when a check is due, or,
// if the last one found no relay to ask, when Kick says one may have
// connected. The probe of a check that timed out stays registered until
// the next check: if it arrives late, the node is reachable after all.
func (s *Service) Serve(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var late probe
	defer func() { late.drop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-late.arrived:
			late = probe{}
			s.log.Debug("a late dial-back probe arrived")
			s.result(Reachable)
		case <-s.kick:
		case <-timer.C:
		}
		if s.due() {
			late.drop()
			late = s.checkOnce(ctx)
		}
		s.arm(timer)
	}
}

// due reports whether a check is due.
func (s *Service) due() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !time.Now().Before(s.next)
}

// arm sets timer to when the next check is due; it stops it while a due
// check waits for Kick (the last one found no relay to ask).
func (s *Service) arm(timer *time.Timer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := time.Until(s.next)
	if wait <= 0 && s.noRelay {
		timer.Stop()
		return
	}
	timer.Reset(max(wait, 0))
}

// drop unregisters the probe, if any.
func (p probe) drop() {
	if p.stop != nil {
		p.stop()
	}
}

// checkOnce asks connected relays for a dial-back until one answers, and
// returns the probe still awaited if it did not arrive in time.
func (s *Service) checkOnce(ctx context.Context) probe {
	asked := false
	for _, p := range s.t.Peers() {
		if !s.cfg.IsRelay(p.ID) || p.Path() != transport.PathDirect {
			continue
		}
		asked = true
		r, pr, err := s.askDialBack(ctx, p)
		if err != nil {
			s.log.Debug("asking a relay for a dial-back failed", "relay", p.ID, "err", err)
			continue
		}
		s.result(r)
		return pr
	}
	if asked {
		s.unanswered()
	} else {
		s.mu.Lock()
		s.noRelay = true
		s.mu.Unlock()
	}
	return probe{}
}

// unanswered backs off after a check no relay answered; the state stays
// (an unknown one is retried after checkEvery).
func (s *Service) unanswered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noRelay = false
	if s.reach == Unknown {
		s.next = time.Now().Add(checkEvery)
		return
	}
	s.failures++
	s.next = time.Now().Add(retryAfter(s.failures))
}

// result records a check's outcome and when the next check is due.
func (s *Service) result(r Reachability) {
	s.mu.Lock()
	old := s.reach
	s.reach, s.noRelay = r, false
	if r == Reachable {
		s.failures, s.next = 0, time.Now().Add(recheckEvery)
	} else {
		s.failures++
		s.next = time.Now().Add(retryAfter(s.failures))
	}
	s.mu.Unlock()
	if old != r {
		s.log.Info("reachability changed", "now", r.String(), "was", old.String())
		if s.cfg.OnChange != nil {
			s.cfg.OnChange(r)
		}
	}
}

// askDialBack asks relay p to probe us and waits probeWait for the probe.
// If it does not arrive in time the answer is Unreachable, with the probe
// still registered (the caller drops it); otherwise the probe is zero.
func (s *Service) askDialBack(ctx context.Context, p *transport.Peer) (Reachability, probe, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	nonce := make([]byte, nat.NonceSize)
	rand.Read(nonce)
	arrived, stop := s.t.ExpectProbe(nonce)
	pr := probe{arrived, stop}
	r, err := s.runDialBack(ctx, p, nonce, arrived)
	if r != Unreachable {
		pr.drop()
		pr = probe{}
	}
	return r, pr, err
}

// runDialBack runs the dial-back stream with p and waits for the probe.
func (s *Service) runDialBack(ctx context.Context, p *transport.Peer, nonce []byte, arrived <-chan struct{}) (Reachability, error) {
	pctx, pcancel := context.WithTimeout(ctx, probeWait)
	defer pcancel()
	st, err := p.OpenStream(ctx, transport.StreamDialBack)
	if err != nil {
		return Unknown, err
	}
	defer st.CancelRead(0)
	st.SetDeadline(time.Now().Add(streamTimeout))
	if err := nat.Write(st, &nat.DialBack{Nonce: nonce}); err != nil {
		return Unknown, err
	}
	st.Close()
	var rep nat.Reply
	if err := nat.Read(st, &rep); err != nil {
		return Unknown, err
	}
	if !rep.OK {
		return Unknown, errorf("relay refused: %s", rep.Reason)
	}
	select {
	case <-arrived:
		return Reachable, nil
	case <-pctx.Done():
		return Unreachable, nil
	}
}

// HandleStream serves the NAT stream kinds; it reports false for a kind
// it does not know.
func (s *Service) HandleStream(p *transport.Peer, kind byte, st *quic.Stream) bool {
	switch kind {
	case transport.StreamDialBack:
		s.serveDialBack(p, st)
	case transport.StreamIntroduce:
		s.serveIntroduce(p, st)
	case transport.StreamRelay:
		s.serveRelay(p, st)
	default:
		return false
	}
	return true
}

// serveDialBack sends a probe to the address p's packets come from (never
// an address p names: no reflection), from a fresh socket.
func (s *Service) serveDialBack(p *transport.Peer, st *quic.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	var req nat.DialBack
	if err := nat.Read(st, &req); err != nil {
		st.CancelRead(0)
		return
	}
	reply := func(r nat.Reply) { _ = nat.Write(st, &r) }
	if !s.cfg.Relay {
		reply(nat.Reply{Reason: "not a relay"})
		return
	}
	s.mu.Lock()
	last := s.dialBack[p.ID]
	if time.Since(last) < dialBackGap {
		s.mu.Unlock()
		reply(nat.Reply{Reason: "too many dial-backs"})
		return
	}
	s.dialBack[p.ID] = time.Now()
	s.mu.Unlock()
	if err := sendProbe(p.RemoteAddrPort(), req.Nonce); err != nil {
		reply(nat.Reply{Reason: "probe failed"})
		return
	}
	reply(nat.Reply{OK: true, Addr: p.RemoteAddrPort().String()})
}

// sendProbe sends three copies of the probe from an ephemeral socket.
func sendProbe(to netip.AddrPort, nonce []byte) error {
	c, err := net.ListenUDP("udp", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	for range 3 {
		if _, err := c.WriteToUDPAddrPort(nat.Probe(nonce), to); err != nil {
			return err
		}
	}
	return nil
}
