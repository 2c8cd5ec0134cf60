package handshake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// frameHeaderSize is the length prefix: a big-endian uint16.
const frameHeaderSize = 2

// ReadFrame reads one frame: a 2-byte big-endian length, then that many
// bytes. The length is checked against MaxFrameSize before the body is
// allocated. A stream that ends before the first header byte gives io.EOF
// unwrapped (as io.Reader does); one that ends inside a frame gives an error
// wrapping ErrTruncated and io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, readErr("reading frame header", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if err := checkFrameLen(n); err != nil {
		return nil, fmt.Errorf("reading frame header: %w", err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, readErr(fmt.Sprintf("reading %d-byte frame", n), err)
	}
	return body, nil
}

// WriteFrame writes msg as one frame. msg must be 1 to MaxFrameSize bytes.
// Header and body go out in a single Write, so a message is never split
// across two stream writes.
func WriteFrame(w io.Writer, msg []byte) error {
	if err := checkFrameLen(len(msg)); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	buf := make([]byte, frameHeaderSize, frameHeaderSize+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	buf = append(buf, msg...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}

// checkFrameLen rejects the lengths no handshake message can have.
func checkFrameLen(n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: empty frame", ErrBadFrame)
	case n > MaxFrameSize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	return nil
}

// readErr marks an end of stream inside a frame as truncation.
func readErr(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w: %w", what, ErrTruncated, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%s: %w", what, err)
}
