package main

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/megaengine/megaengine/protocol/wire"
)

// result is the --json output: one object.
type result struct {
	Nodes               int                `json:"nodes"`
	Failed              int                `json:"failed"`
	Announcements       int                `json:"announcements"`
	ShouldReceive       int                `json:"should_receive"`
	Delivered           float64            `json:"delivered"`
	CopiesPerNode       float64            `json:"copies_per_node"`
	IHavePerNode        float64            `json:"ihave_per_node"`
	NonsubscriberCopies float64            `json:"nonsubscriber_copies"`
	LastHop             int                `json:"last_hop"`
	P50ms               float64            `json:"p50_ms"`
	P99ms               float64            `json:"p99_ms"`
	SteadyWindowS       float64            `json:"steady_window_s"`
	SteadyBytesPerNodeS float64            `json:"steady_bytes_per_node_s"`
	SteadyMsgsPerNodeS  float64            `json:"steady_msgs_per_node_s"`
	SteadyBytesByType   map[string]float64 `json:"steady_bytes_per_node_s_by_type"`
}

// tracked is one measured announcement.
type tracked struct {
	id     wire.MessageID
	origin int32
	repo   int32
	at     time.Duration
	first  map[int32]time.Duration // receiver → first arrival
	hop    map[int32]int           // receiver → hops of the first copy
	copies map[int32]int           // receiver → payload copies
	ihaves map[int32]int           // receiver → "I have" notices naming it
}

// metrics counts bytes and follows the measured announcements.
type metrics struct {
	mu       sync.Mutex // sent and delivered run on the workers
	s        *scenario
	counting bool
	bytes    uint64
	msgs     uint64
	byType   map[wire.MsgType]uint64
	// steadyBytes etc. are the counters at the end of the steady window.
	steadyBytes uint64
	bySig       map[[64]byte]*tracked
	byID        map[wire.MessageID]*tracked
	order       []*tracked
}

func newMetrics(s *scenario) *metrics {
	m := &metrics{s: s, byType: map[wire.MsgType]uint64{}, bySig: map[[64]byte]*tracked{}, byID: map[wire.MessageID]*tracked{}}
	s.net.onSend = m.sent
	s.net.onDeliver = m.delivered
	return m
}

// peek reads the type, signature and TTL of an encoded envelope without
// decoding it: the encoding is canonical, so the type is byte 4 (for
// types below 24) and the envelope ends 0x06 0x58 0x40 ‖ signature ‖
// 0x07 ‖ ttl (TTL ≤ 16 is one byte), or 0x06 0x40 0x07 ‖ ttl when it is
// unsigned (signed false, sig zero).
func peek(raw []byte) (typ wire.MsgType, sig [64]byte, signed bool, ttl uint8, ok bool) {
	n := len(raw)
	if n < 16 || raw[0] != 0xa7 || raw[3] != 0x02 || raw[4] >= 24 || raw[n-2] != 0x07 {
		return 0, sig, false, 0, false
	}
	typ, ttl = wire.MsgType(raw[4]), raw[n-1]
	if raw[n-4] == 0x06 && raw[n-3] == 0x40 {
		return typ, sig, false, ttl, true
	}
	if n < 80 || raw[n-69] != 0x06 || raw[n-68] != 0x58 || raw[n-67] != 0x40 {
		return 0, sig, false, 0, false
	}
	copy(sig[:], raw[n-66:n-2])
	return typ, sig, true, ttl, true
}

func (m *metrics) sent(_ int32, raw []byte) {
	if !m.counting {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bytes += uint64(len(raw))
	m.msgs++
	typ, _, _, _, _ := peek(raw)
	m.byType[typ] += uint64(len(raw))
}

func (m *metrics) track(env *wire.Envelope, origin, repo int32) {
	t := &tracked{id: env.ID(), origin: origin, repo: repo, at: m.s.net.now,
		first: map[int32]time.Duration{}, hop: map[int32]int{}, copies: map[int32]int{}, ihaves: map[int32]int{}}
	var sig [64]byte
	copy(sig[:], env.Signature)
	m.bySig[sig] = t
	m.byID[t.id] = t
	m.order = append(m.order, t)
}

func (m *metrics) delivered(to, _ int32, at time.Duration, raw []byte, _ bool) {
	if len(m.order) == 0 {
		return
	}
	typ, sig, signed, ttl, ok := peek(raw)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.bySig[sig]; signed && t != nil {
		t.copies[to]++
		if _, seen := t.first[to]; !seen {
			t.first[to] = at - t.at
			t.hop[to] = wire.DefaultTTL + 1 - int(ttl)
		}
		return
	}
	m.countIHave(to, typ, raw)
}

// countIHave counts the measured ids named by an "I have" notice.
func (m *metrics) countIHave(to int32, typ wire.MsgType, raw []byte) {
	if typ != wire.TypeIHave {
		return
	}
	env, err := wire.Unmarshal(raw)
	if err != nil {
		return
	}
	body, err := env.DecodeBody()
	if err != nil {
		return
	}
	for _, id := range body.(*wire.IHave).IDs {
		if t := m.byID[id]; t != nil {
			t.ihaves[to]++
		}
	}
}

// result computes the output from the counters.
func (m *metrics) result() result {
	s := m.s
	r := result{Nodes: s.p.Nodes, Failed: len(s.failed), Announcements: len(m.order), SteadyBytesByType: map[string]float64{}}
	window := s.p.Steady.Seconds()
	if window > 0 {
		r.SteadyWindowS = window
		r.SteadyBytesPerNodeS = round(float64(m.steadyBytes) / float64(s.p.Nodes) / window)
		r.SteadyMsgsPerNodeS = round(float64(m.msgs) / float64(s.p.Nodes) / window)
		for typ, b := range m.byType {
			r.SteadyBytesByType[typ.String()] = round(float64(b) / float64(s.p.Nodes) / window)
		}
	}
	var got, copies, receivers, ihaves, nonsub int
	var lat []float64
	for _, t := range m.order {
		for _, i := range s.subs[t.repo] {
			// Live: up from the announcement on. A node that comes back
			// later catches up by the snapshot; it is not counted.
			if n := s.net.nodes[i]; i == t.origin || !n.up || n.since > t.at {
				continue
			}
			r.ShouldReceive++
			if d, ok := t.first[i]; ok {
				got++
				lat = append(lat, float64(d)/float64(time.Millisecond))
				r.LastHop = max(r.LastHop, t.hop[i])
			}
		}
		for i, c := range t.copies {
			if i == t.origin {
				continue
			}
			receivers++
			copies += c
			ihaves += t.ihaves[i]
			if !s.subOf[i][t.repo] {
				nonsub += c
			}
		}
	}
	if r.ShouldReceive > 0 {
		r.Delivered = round(float64(got) / float64(r.ShouldReceive))
	}
	if receivers > 0 {
		r.CopiesPerNode = round(float64(copies) / float64(receivers))
		r.IHavePerNode = round(float64(ihaves) / float64(receivers))
	}
	if len(m.order) > 0 {
		r.NonsubscriberCopies = round(float64(nonsub) / float64(len(m.order)))
	}
	slices.Sort(lat)
	r.P50ms, r.P99ms = round(quantile(lat, 0.5)), round(quantile(lat, 0.99))
	return r
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(q*float64(len(sorted))))-1)]
}

// round keeps three decimals, so the JSON is short and stable.
func round(x float64) float64 { return math.Round(x*1000) / 1000 }
