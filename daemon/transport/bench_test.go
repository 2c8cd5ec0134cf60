package transport

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/hostile"
	"github.com/megaengine/megaengine/internal/testutil"
)

// BenchmarkConnectUnderAttack times an honest dial (QUIC + Noise) while a
// stranger floods forged Initial packets and holds 200 half-open
// connections, against the same dial with no attack; it reports the heap
// during and after a flood of 100,000 Initials.
//
//	go test -run '^$' -bench ConnectUnderAttack -benchtime 50x ./daemon/transport/
func BenchmarkConnectUnderAttack(b *testing.B) {
	for _, attack := range []bool{false, true} {
		name := "quiet"
		if attack {
			name = "attacked"
		}
		b.Run(name, func(b *testing.B) {
			target, _ := newNode(b, func(c *Config) { c.HandshakeTimeout = 2 * time.Second })
			var stop atomic.Bool
			flooded := make(chan struct{})
			if attack {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, closeAll, err := hostile.HalfOpen(ctx, target.LocalAddr().String(), 200)
				if err != nil {
					b.Fatal(err)
				}
				defer closeAll()
				go func() {
					defer close(flooded)
					for !stop.Load() {
						hostile.InitialFlood(target.LocalAddr().String(), 1000)
					}
				}()
			} else {
				close(flooded)
			}
			dialers := make([]*Transport, b.N)
			for i := range dialers {
				dialers[i], _ = newNode(b, nil)
			}
			b.ResetTimer()
			for i := range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				p, err := dialers[i].Dial(ctx, addrOf(target))
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				p.Close(CodeClosed, "done")
			}
			b.StopTimer()
			stop.Store(true)
			<-flooded
		})
	}
	b.Run("flood-100k-heap", func(b *testing.B) {
		target, _ := newNode(b, func(c *Config) { c.HandshakeTimeout = 2 * time.Second })
		base := heapInUse()
		var peak uint64
		for range b.N {
			done := make(chan struct{})
			go func() { defer close(done); hostile.InitialFlood(target.LocalAddr().String(), 100000) }()
			for waiting := true; waiting; {
				select {
				case <-done:
					waiting = false
				case <-time.After(50 * time.Millisecond):
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					peak = max(peak, m.HeapInuse)
				}
			}
		}
		testutil.WaitFor(b, "the forged handshakes to time out", 30*time.Second, func() bool { return target.QUICHandshakes() == 0 })
		b.ReportMetric(float64(base)/(1<<20), "MB-heap-before")
		b.ReportMetric(float64(peak)/(1<<20), "MB-heap-peak")
		b.ReportMetric(float64(heapInUse())/(1<<20), "MB-heap-after")
	})
}
