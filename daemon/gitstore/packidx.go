package gitstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// PackHolding returns the first of packs (paths of .pack files) whose index
// lists every one of oids, or "" if none does. It reads the version 2 pack
// indexes in place (a binary search per object id), so it costs a few
// reads per id, whatever the size of the pack.
func PackHolding(packs, oids []string) string {
	for _, p := range packs {
		if ok, err := packHasAll(strings.TrimSuffix(p, ".pack")+".idx", oids); err == nil && ok {
			return p
		}
	}
	return ""
}

// packHasAll reports whether the pack index at path lists every oid.
func packHasAll(path string, oids []string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var hdr [idxHeaderLen]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return false, err
	}
	if !bytes.Equal(hdr[:8], []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		return false, fmt.Errorf("%s: not a version 2 pack index", path)
	}
	fanout := func(i int) int64 {
		if i < 0 {
			return 0
		}
		return int64(binary.BigEndian.Uint32(hdr[8+4*i:]))
	}
	for _, o := range oids {
		id, err := hex.DecodeString(o)
		if err != nil || len(id) == 0 {
			return false, fmt.Errorf("bad object id %q", o)
		}
		lo, hi := fanout(int(id[0])-1), fanout(int(id[0]))
		found, err := searchIdx(f, int64(len(id)), lo, hi, id)
		if err != nil || !found {
			return false, err
		}
	}
	return true, nil
}

// searchIdx binary-searches the sorted names [lo, hi) of a pack index.
func searchIdx(f *os.File, size, lo, hi int64, id []byte) (bool, error) {
	buf := make([]byte, size)
	for lo < hi {
		mid := (lo + hi) / 2
		if _, err := f.ReadAt(buf, idxHeaderLen+mid*size); err != nil {
			return false, err
		}
		switch c := bytes.Compare(buf, id); {
		case c == 0:
			return true, nil
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false, nil
}

// idxHeaderLen is the size of a version 2 index's header and fan-out table.
const idxHeaderLen = 8 + 256*4
