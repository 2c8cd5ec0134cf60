package replica

import "github.com/megaengine/megaengine/protocol/identity"

// EventKind says what happened to a repository.
type EventKind int

// Event kinds.
const (
	SyncStarted  EventKind = iota // a sync began; Node is the holder preferred, if any
	SyncFinished                  // a sync ended well; Bytes came from Node (zero: up to date)
	SyncFailed                    // a sync failed; Err says why
	Published                     // this node signed and announced new refs
)

// Event is something the replica service did, for the node's event stream.
type Event struct {
	Kind  EventKind
	Repo  identity.RepoID
	Node  identity.NodeID
	Bytes int64
	Err   error
}

func (s *Service) emit(ev Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}
