package wire

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/megaengine/megaengine/protocol/cborx"
)

// The envelope's encoding, by hand. It is a map of seven small keys, so
// its core deterministic encoding is a fixed sequence of heads: writing
// it, or reading an input that is exactly in it, costs a fraction of the
// reflection-driven codec. Anything else an input may be goes to the
// general strict decoder. The vector tests check the written bytes;
// FuzzEnvelopeReader checks that reading agrees with the general decoder.

// CBOR major types.
const (
	majorUint  = 0
	majorBytes = 2
	majorText  = 3
	majorArray = 4
)

// appendHead appends a CBOR head of the major type with argument n, in
// its shortest form.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), n)
	}
}

func appendUintField(b []byte, key byte, v uint64) []byte {
	return appendHead(append(b, key), majorUint, v)
}

func appendBytesField(b []byte, key byte, v []byte) []byte {
	return append(appendHead(append(b, key), majorBytes, uint64(len(v))), v...)
}

// appendSigned appends keys 1–5, the signed fields.
func (e *Envelope) appendSigned(b []byte) []byte {
	b = appendUintField(b, 1, e.Version)
	b = appendUintField(b, 2, uint64(e.Type))
	b = appendBytesField(b, 3, e.Origin[:])
	b = appendUintField(b, 4, e.Timestamp)
	return appendBytesField(b, 5, e.Body)
}

// headRoom is more than the heads and fixed fields of an envelope take.
const headRoom = 160

// canonicalReader reads core deterministic CBOR heads; a read that finds
// anything else sets bad.
type canonicalReader struct {
	b   []byte
	off int
	bad bool
}

// head reads a head of the major type in its shortest form.
func (r *canonicalReader) head(major byte) uint64 {
	if r.bad || r.off >= len(r.b) || r.b[r.off]>>5 != major {
		r.bad = true
		return 0
	}
	info := r.b[r.off] & 0x1f
	r.off++
	var n uint64
	var size int
	switch {
	case info < 24:
		return uint64(info)
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		r.bad = true
		return 0
	}
	if len(r.b)-r.off < size {
		r.bad = true
		return 0
	}
	for _, c := range r.b[r.off : r.off+size] {
		n = n<<8 | uint64(c)
	}
	r.off += size
	// Shortest form: a one-byte argument is at least 24, and a longer one
	// needs its length.
	if min := [...]uint64{1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000}[size]; n < min {
		r.bad = true
	}
	return n
}

func (r *canonicalReader) key(k byte) {
	if r.bad || r.off >= len(r.b) || r.b[r.off] != k {
		r.bad = true
		return
	}
	r.off++
}

func (r *canonicalReader) uintField(k byte) *uint64 {
	r.key(k)
	v := r.head(majorUint)
	return &v
}

// bytesField returns a copy (never nil), so the result does not keep the
// input alive or change with it.
func (r *canonicalReader) bytesField(k byte) []byte {
	r.key(k)
	n := r.head(majorBytes)
	if r.bad || n > uint64(len(r.b)-r.off) {
		r.bad = true
		return nil
	}
	v := append([]byte{}, r.b[r.off:r.off+int(n)]...)
	r.off += int(n)
	return v
}

// text reads a text string, which must be valid UTF-8.
func (r *canonicalReader) text() string {
	n := r.head(majorText)
	if r.bad || n > uint64(len(r.b)-r.off) || !utf8.Valid(r.b[r.off:r.off+int(n)]) {
		r.bad = true
		return ""
	}
	v := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return v
}

// texts reads an array of text strings (never nil).
func (r *canonicalReader) texts() []string {
	n := r.head(majorArray)
	if r.bad || n > cborx.MaxArrayElements || n > uint64(len(r.b)-r.off) {
		r.bad = true
		return nil
	}
	v := make([]string, 0, n)
	for range n {
		v = append(v, r.text())
	}
	return v
}

// readCanonicalNodeAnnouncement decodes b if it is a NodeAnnouncement
// body in exactly its core deterministic encoding; ok is false for
// anything else.
func readCanonicalNodeAnnouncement(b []byte) (a NodeAnnouncement, ok bool) {
	if len(b) == 0 || b[0] != 0xa5 {
		return a, false
	}
	r := canonicalReader{b: b, off: 1}
	r.key(1)
	a.Alias = r.text()
	r.key(2)
	a.Addresses = r.texts()
	r.key(3)
	a.Kind = NodeKind(r.head(majorUint))
	r.key(4)
	a.Version = r.text()
	r.key(5)
	a.Features = r.texts()
	return a, !r.bad && r.off == len(b)
}

// readCanonicalEnvelope decodes b if it is an envelope map in exactly
// its core deterministic encoding; ok is false for anything else.
func readCanonicalEnvelope(b []byte) (w envelopeDecodeCBOR, ok bool) {
	r := canonicalReader{b: b}
	if len(b) == 0 || b[0] != 0xa7 {
		return w, false
	}
	r.off = 1
	w.Version = r.uintField(1)
	w.Type = r.uintField(2)
	w.Origin = r.bytesField(3)
	w.Timestamp = r.uintField(4)
	w.Body = r.bytesField(5)
	w.Signature = r.bytesField(6)
	w.TTL = r.uintField(7)
	return w, !r.bad && r.off == len(b)
}
