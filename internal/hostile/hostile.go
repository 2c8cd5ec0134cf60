// Package hostile holds the attacks the tests keep: what a stranger on the
// network can send a node with nothing but a UDP socket, a QUIC stack and a
// fresh key. Each attack is bounded in count and time by its caller.
package hostile

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// ALPN is MegaEngine's TLS application protocol (daemon/transport.ALPN).
const ALPN = "megaengine/1"

// HalfOpen opens n QUIC connections to target concurrently and never
// starts the Noise handshake on them: each costs the target a connection
// and, until it gives up, a handshake slot. Connections the target refuses
// are not counted; close ends the rest.
func HalfOpen(ctx context.Context, target string, n int) (opened int, close func(), err error) {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return 0, nil, err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: raddr.IP, Port: 0})
	if err != nil {
		return 0, nil, err
	}
	tr := &quic.Transport{Conn: udp}
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13}
	var mu sync.Mutex
	var conns []*quic.Conn
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, err := tr.Dial(ctx, raddr, tlsConf, &quic.Config{KeepAlivePeriod: 0})
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return len(conns), func() {
		for _, c := range conns {
			c.CloseWithError(0, "")
		}
		tr.Close()
		udp.Close()
	}, nil
}

// InitialFlood sends n forged QUIC Initial packets (1,200 bytes, random
// connection ids, garbage payload) to target from one socket. Without
// address validation each makes a server create connection state.
func InitialFlood(target string, n int) error {
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return err
	}
	udp, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return err
	}
	defer udp.Close()
	pkt := make([]byte, 1200)
	for i := range n {
		forgeInitial(pkt)
		if _, err := udp.Write(pkt); err != nil && !errors.Is(err, net.ErrClosed) {
			// A full socket buffer (ENOBUFS) only drops this one.
			if i == 0 {
				return err
			}
		}
	}
	return nil
}

// forgeInitial fills pkt with a QUIC v1 long-header Initial packet:
// fresh 8-byte connection ids, no token, and a random "encrypted" payload.
func forgeInitial(pkt []byte) {
	rand.Read(pkt)
	pkt[0] = 0xc3 // long header, fixed bit, type Initial, 4-byte packet number
	binary.BigEndian.PutUint32(pkt[1:5], 1)
	pkt[5] = 8  // destination connection id length; the id follows
	pkt[14] = 8 // source connection id length
	pkt[23] = 0 // token length
	rest := len(pkt) - 26
	binary.BigEndian.PutUint16(pkt[24:26], uint16(rest)|0x4000) // 2-byte varint length
}

// FakeNodes returns n signed node announcements of n fresh keys: valid,
// distinct, and worthless — what a stranger floods tables with.
func FakeNodes(n int, now time.Time) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for i := range n {
		k, err := identity.GenerateKey()
		if err != nil {
			return nil, err
		}
		env, err := wire.Sign(k, now, &wire.NodeAnnouncement{
			Alias: fmt.Sprintf("fake-%d", i), Addresses: []string{"198.18.0.1:9000"}, Features: []string{},
		})
		if err != nil {
			return nil, err
		}
		raw, err := env.Marshal()
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

// WriteSnapshot writes msgs as a snapshot stream body: each envelope after
// its 4-byte big-endian length (spec/node.md).
func WriteSnapshot(w io.Writer, msgs [][]byte) error {
	var hdr [4]byte
	for _, m := range msgs {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(m)))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.Write(m); err != nil {
			return err
		}
	}
	return nil
}
