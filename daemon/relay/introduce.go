package relay

import (
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/megaengine/megaengine/daemon/transport"
	"github.com/megaengine/megaengine/protocol/nat"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// relayState is the relayed streams a relay carries now.
type relayState struct{}

func (s *Service) serveIntroduce(p *transport.Peer, st *quic.Stream) {
	defer st.Close()
	_ = nat.Write(st, &nat.Reply{Reason: "introductions not supported"})
}

func (s *Service) serveRelay(p *transport.Peer, st *quic.Stream) {
	defer st.Close()
	_ = nat.Write(st, &nat.Reply{Reason: "relayed streams not supported"})
}
