package gitstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
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

// listedInStore returns which of oids the object directory objects holds
// as a loose object or lists in one of its pack indexes, reading the files
// in place instead of running git. An id it does not find may still be
// present (an alternate, a pack removed and rewritten meanwhile): ask git.
func listedInStore(objects string, oids []string) map[string]bool {
	found := map[string]bool{}
	idx, _ := filepath.Glob(filepath.Join(objects, "pack", "pack-*.idx"))
	for _, o := range oids {
		if len(o) > 2 {
			if _, err := os.Stat(filepath.Join(objects, o[:2], o[2:])); err == nil {
				found[o] = true
			}
		}
	}
	for _, path := range idx {
		var rest []string
		for _, o := range oids {
			if !found[o] {
				rest = append(rest, o)
			}
		}
		if len(rest) == 0 {
			break
		}
		_ = eachListed(path, rest, func(o string) { found[o] = true })
	}
	return found
}

// packHasAll reports whether the pack index at path lists every oid.
func packHasAll(path string, oids []string) (bool, error) {
	n := 0
	err := eachListed(path, oids, func(string) { n++ })
	return err == nil && n == len(oids), err
}

// eachListed calls listed with each of oids that the pack index at path
// lists.
func eachListed(path string, oids []string, listed func(oid string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [idxHeaderLen]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return err
	}
	if !bytes.Equal(hdr[:8], []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}) {
		return fmt.Errorf("%s: not a version 2 pack index", path)
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
			return fmt.Errorf("bad object id %q", o)
		}
		lo, hi := fanout(int(id[0])-1), fanout(int(id[0]))
		found, err := searchIdx(f, int64(len(id)), lo, hi, id)
		if err != nil {
			return err
		}
		if found {
			listed(o)
		}
	}
	return nil
}

// maxIdxSlice is the most of a pack index's names searchIdx reads at once.
const maxIdxSlice = 64 << 10

// searchIdx binary-searches the sorted names [lo, hi) of a pack index: in
// one read when they fit in maxIdxSlice, else a read per step.
func searchIdx(f *os.File, size, lo, hi int64, id []byte) (bool, error) {
	if n := (hi - lo) * size; n > 0 && n <= maxIdxSlice {
		names := make([]byte, n)
		if _, err := f.ReadAt(names, idxHeaderLen+lo*size); err != nil {
			return false, err
		}
		count := int(hi - lo)
		i := sort.Search(count, func(i int) bool { return bytes.Compare(names[int64(i)*size:int64(i+1)*size], id) >= 0 })
		return i < count && bytes.Equal(names[int64(i)*size:int64(i+1)*size], id), nil
	}
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
