package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/megaengine/megaengine/protocol/cborx"
	"github.com/megaengine/megaengine/protocol/identity"
)

// Key prefixes of the repository tables (see store.go for the others).
const (
	prefixRepoDoc    = 'd' // 'd' repo → signed identity document
	prefixSignedRefs = 'f' // 'f' repo node → seq(8) ‖ signed refs
	prefixRepoState  = 'r' // 'r' repo → the daemon's local state (opaque bytes)
	prefixDocLater   = 'v' // 'v' repo → CBOR array of the later identity document versions
	prefixProposal   = 'p' // 'p' repo → a next document version still short of signatures
)

func repoKey(prefix byte, repo identity.RepoID) []byte {
	return append([]byte{prefix}, repo[:]...)
}

func (s *Store) get(key []byte) (val []byte, ok bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		ok = err == nil
		return err
	})
	return val, ok, err
}

func (s *Store) set(key, val []byte) error {
	return s.update(func(txn *badger.Txn) error { return txn.Set(key, val) })
}

// PutRepoDoc stores a repository's signed identity document (verified by the caller).
func (s *Store) PutRepoDoc(repo identity.RepoID, raw []byte) error {
	return s.set(repoKey(prefixRepoDoc, repo), raw)
}

// RepoDoc returns the stored identity document of repo.
func (s *Store) RepoDoc(repo identity.RepoID) ([]byte, bool, error) {
	return s.get(repoKey(prefixRepoDoc, repo))
}

// PutDocVersions stores the identity document versions after the first,
// in order (a chain verified by the caller).
func (s *Store) PutDocVersions(repo identity.RepoID, later [][]byte) error {
	val, err := cborx.Marshal(later)
	if err != nil {
		return err
	}
	return s.set(repoKey(prefixDocLater, repo), val)
}

// DocVersions returns the stored later versions of repo's document.
func (s *Store) DocVersions(repo identity.RepoID) ([][]byte, error) {
	val, ok, err := s.get(repoKey(prefixDocLater, repo))
	if err != nil || !ok {
		return nil, err
	}
	var later [][]byte
	if err := cborx.Unmarshal(val, &later); err != nil {
		return nil, fmt.Errorf("reading the document versions of %s: %w", repo, err)
	}
	return later, nil
}

// PutDocProposal stores the pending next version of repo's document;
// nil deletes it.
func (s *Store) PutDocProposal(repo identity.RepoID, raw []byte) error {
	if raw == nil {
		return s.update(func(txn *badger.Txn) error { return txn.Delete(repoKey(prefixProposal, repo)) })
	}
	return s.set(repoKey(prefixProposal, repo), raw)
}

// DocProposal returns the pending next version of repo's document.
func (s *Store) DocProposal(repo identity.RepoID) ([]byte, bool, error) {
	return s.get(repoKey(prefixProposal, repo))
}

func signedRefsKey(repo identity.RepoID, node identity.NodeID) []byte {
	return append(repoKey(prefixSignedRefs, repo), node[:]...)
}

// PutSignedRefs stores node's signed refs of repo if seq is newer than the
// stored one, and reports whether it did.
func (s *Store) PutSignedRefs(repo identity.RepoID, node identity.NodeID, seq uint64, raw []byte) (stored bool, err error) {
	key := signedRefsKey(repo, node)
	val := append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(raw)), seq), raw...)
	err = s.update(func(txn *badger.Txn) error {
		stored = false
		item, err := txn.Get(key)
		if err == nil {
			var old uint64
			if err := item.Value(func(v []byte) error {
				if len(v) >= 8 {
					old = binary.BigEndian.Uint64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			if old >= seq {
				return nil
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		stored = true
		return txn.Set(key, val)
	})
	return stored, err
}

// SignedRefs returns node's stored signed refs of repo and their seq.
func (s *Store) SignedRefs(repo identity.RepoID, node identity.NodeID) (raw []byte, seq uint64, ok bool, err error) {
	val, ok, err := s.get(signedRefsKey(repo, node))
	if err != nil || !ok {
		return nil, 0, false, err
	}
	if len(val) < 8 {
		return nil, 0, false, errors.New("store: short signed refs record")
	}
	return val[8:], binary.BigEndian.Uint64(val), true, nil
}

// EachSignedRefs calls fn for every namespace's signed refs of repo.
func (s *Store) EachSignedRefs(repo identity.RepoID, fn func(node identity.NodeID, seq uint64, raw []byte) error) error {
	prefix := repoKey(prefixSignedRefs, repo)
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			if len(key) != len(prefix)+32 {
				return fmt.Errorf("store: bad signed refs key")
			}
			var node identity.NodeID
			copy(node[:], key[len(prefix):])
			val, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(val) < 8 {
				return errors.New("store: short signed refs record")
			}
			if err := fn(node, binary.BigEndian.Uint64(val), val[8:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutRepoState stores the daemon's local state of repo.
func (s *Store) PutRepoState(repo identity.RepoID, state []byte) error {
	return s.set(repoKey(prefixRepoState, repo), state)
}

// EachRepoState calls fn for every stored repository state.
func (s *Store) EachRepoState(fn func(repo identity.RepoID, state []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRepoState}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().Key()
			if len(key) != 33 {
				return errors.New("store: bad repo state key")
			}
			var repo identity.RepoID
			copy(repo[:], key[1:])
			val, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := fn(repo, val); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForgetRepo deletes what the store holds of repo: its state and, unless
// keepReplica, its identity document (every version, and a proposal) and every namespace's signed refs.
func (s *Store) ForgetRepo(repo identity.RepoID, keepReplica bool) error {
	keys := [][]byte{repoKey(prefixRepoState, repo)}
	if !keepReplica {
		keys = append(keys, repoKey(prefixRepoDoc, repo), repoKey(prefixDocLater, repo), repoKey(prefixProposal, repo))
		if err := s.EachSignedRefs(repo, func(node identity.NodeID, _ uint64, _ []byte) error {
			keys = append(keys, signedRefsKey(repo, node))
			return nil
		}); err != nil {
			return err
		}
	}
	return s.deleteKeys(keys)
}
