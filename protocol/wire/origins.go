package wire

import (
	"sync"

	"github.com/megaengine/megaengine/protocol/identity"
)

// maxCheckedOrigins bounds the cache of origin keys already found to be
// valid curve points. Checking a point costs about as much as a third of
// a signature verification, and a node hears the same origins again and
// again (every duplicate copy of a message carries its origin).
const maxCheckedOrigins = 1 << 14

var checkedOrigins = struct {
	sync.Mutex
	m map[identity.NodeID]struct{}
}{m: map[identity.NodeID]struct{}{}}

// parseOrigin is identity.NodeIDFromPublicKey with a bounded memo of the
// keys that passed; only valid keys are remembered, and the memo is
// emptied when full.
func parseOrigin(b []byte) (identity.NodeID, error) {
	var id identity.NodeID
	if len(b) == len(id) {
		copy(id[:], b)
		checkedOrigins.Lock()
		_, ok := checkedOrigins.m[id]
		checkedOrigins.Unlock()
		if ok {
			return id, nil
		}
	}
	id, err := identity.NodeIDFromPublicKey(b)
	if err != nil {
		return id, err
	}
	checkedOrigins.Lock()
	if len(checkedOrigins.m) >= maxCheckedOrigins {
		clear(checkedOrigins.m)
	}
	checkedOrigins.m[id] = struct{}{}
	checkedOrigins.Unlock()
	return id, nil
}
