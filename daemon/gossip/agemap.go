package gossip

import "time"

// ageMap remembers keys for at least its window and at most twice that:
// two generations, and when the newer is a window old the older is
// dropped whole. Forgetting costs nothing per key, where walking a map of
// every message of the last minutes on each tick cost more than the
// tick's real work.
type ageMap[K comparable, V any] struct {
	window   time.Duration
	cur, old map[K]V
	since    time.Time // when cur began
}

func newAgeMap[K comparable, V any](window time.Duration, now time.Time) ageMap[K, V] {
	return ageMap[K, V]{window: window, cur: map[K]V{}, since: now}
}

func (m *ageMap[K, V]) get(k K) (V, bool) {
	if v, ok := m.cur[k]; ok {
		return v, true
	}
	v, ok := m.old[k]
	return v, ok
}

func (m *ageMap[K, V]) has(k K) bool {
	_, ok := m.get(k)
	return ok
}

func (m *ageMap[K, V]) put(k K, v V) { m.cur[k] = v }

func (m *ageMap[K, V]) remove(k K) {
	delete(m.cur, k)
	delete(m.old, k)
}

// age starts a new generation if the current one is a window old.
func (m *ageMap[K, V]) age(now time.Time) {
	if now.Sub(m.since) >= m.window {
		m.old, m.cur, m.since = m.cur, make(map[K]V, len(m.cur)), now
	}
}
