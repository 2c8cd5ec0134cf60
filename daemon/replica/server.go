package replica

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/megaengine/megaengine/daemon/gitstore"
	"github.com/megaengine/megaengine/protocol/identity"
	"github.com/megaengine/megaengine/protocol/wire"
)

// ServeFetch answers one fetch stream from peer (spec/repo.md §4) and
// closes it. ctx bounds the work (the peer's connection).
func (s *Service) ServeFetch(ctx context.Context, peer identity.NodeID, st Stream) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(fetchIdle))
	_, payload, err := wire.ReadFetchFrame(st, wire.FrameRequest)
	if err != nil {
		s.cfg.OnMisbehave(peer, "bad fetch request")
		return
	}
	st.SetReadDeadline(time.Time{})
	req, repo, err := wire.DecodeFetchRequest(payload)
	if err != nil {
		s.cfg.OnMisbehave(peer, "bad fetch request")
		writeStatus(st, wire.FetchBadInput, "malformed request")
		return
	}
	select {
	case s.serving <- struct{}{}:
		defer func() { <-s.serving }()
	default:
		writeStatus(st, wire.FetchBusy, "busy")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	st.SetWriteDeadline(time.Now().Add(fetchTimeout))
	if s.waitForFlight(ctx, st, peer, repo, req) {
		return
	}
	if err := s.answer(ctx, st, repo, req); err != nil {
		s.log.Debug("serving a fetch failed", "peer", peer, "repo", repo, "err", err)
	}
}

// writeStatus answers with a header that carries no repository.
func writeStatus(w io.Writer, status uint64, msg string) error {
	return wire.WriteFetchMessage(w, wire.FrameHeader, wire.FetchHeader{Status: status, Message: msg, Doc: []byte{}, Refs: [][]byte{}})
}

// answer writes the header, the thin pack and the end frame.
func (s *Service) answer(ctx context.Context, w io.Writer, repo identity.RepoID, req *wire.FetchRequest) error {
	docRaw, ok, err := s.store.RepoDoc(repo)
	if err != nil {
		return err
	}
	bare, berr := s.openBare(repo)
	if !ok || berr != nil {
		return writeStatus(w, wire.FetchNotFound, "repository not held here")
	}
	header, wants, err := s.header(ctx, bare, repo, docRaw, req)
	if err != nil {
		return err
	}
	if err := wire.WriteFetchMessage(w, wire.FrameHeader, header); err != nil {
		return err
	}
	haves := make([]string, len(req.Haves))
	for i, h := range req.Haves {
		haves[i] = hex.EncodeToString(h)
	}
	defer s.readLock(repo)() // the packs pack-objects reads stay in place
	fw := &frameWriter{w: w, h: sha256.New()}
	bw := bufio.NewWriterSize(fw, wire.MaxPackChunk)
	if len(wants) > 0 {
		if _, err := bare.PackObjects(ctx, dedupe(wants), haves, bw, gitstore.PackOptions{Full: len(haves) == 0}); err != nil {
			return wire.WriteFetchMessage(w, wire.FrameError, wire.FetchError{Code: wire.FetchFailed, Message: "packing objects failed"})
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return wire.WriteFetchMessage(w, wire.FrameEnd, wire.FetchEnd{Size: uint64(fw.n), Digest: fw.h.Sum(nil)})
}

// header collects the signed refs newer than the client's, of the
// namespaces it wants and whose refs in the replica are as signed, and the
// object ids they name.
func (s *Service) header(ctx context.Context, bare *gitstore.Bare, repo identity.RepoID, docRaw []byte, req *wire.FetchRequest) (wire.FetchHeader, []string, error) {
	known := map[identity.NodeID]uint64{}
	for _, k := range req.Known {
		id, _ := identity.NodeIDFromPublicKey(k.Node)
		known[id] = k.Seq
	}
	wanted := map[identity.NodeID]bool{}
	for _, ns := range req.Namespaces {
		id, _ := identity.NodeIDFromPublicKey(ns)
		wanted[id] = true
	}
	header := wire.FetchHeader{Status: wire.FetchOK, Doc: docRaw, Refs: [][]byte{}}
	if c, err := s.Chain(repo); err == nil && c.Len() > 1 {
		header.Versions = c.Later()
	}
	if raw, ok, err := s.store.DocProposal(repo); err == nil && ok {
		header.Proposal = raw
	}
	var newer []update
	err := s.store.EachSignedRefs(repo, func(node identity.NodeID, seq uint64, raw []byte) error {
		if (len(wanted) > 0 && !wanted[node]) || seq <= known[node] {
			return nil
		}
		if sr, err := wire.UnmarshalSignedRefs(raw); err == nil {
			newer = append(newer, update{node, sr, raw})
		}
		return nil
	})
	var wants []string
	for _, u := range newer {
		if len(header.Refs) >= wire.MaxFetchNamespaces {
			break
		}
		if err := s.ensureSigned(ctx, bare, repo, u.node); err != nil {
			s.log.Warn("not serving a namespace whose refs differ from its signed refs", "repo", repo, "namespace", u.node, "err", err)
			continue
		}
		header.Refs = append(header.Refs, u.raw)
		for _, r := range u.sr.Refs() {
			wants = append(wants, hex.EncodeToString(r.OID))
		}
	}
	return header, wants, err
}

// frameWriter cuts a byte stream into pack frames and hashes it. Writes
// come through a bufio.Writer of MaxPackChunk, so each is at most a chunk.
type frameWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (f *frameWriter) Write(b []byte) (int, error) {
	for off := 0; off < len(b); off += wire.MaxPackChunk {
		chunk := b[off:min(len(b), off+wire.MaxPackChunk)]
		if err := wire.WriteFetchFrame(f.w, wire.FramePack, chunk); err != nil {
			return off, err
		}
		f.h.Write(chunk)
		f.n += int64(len(chunk))
	}
	return len(b), nil
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
