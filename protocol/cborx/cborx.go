// Package cborx is the one CBOR configuration of the protocol: core
// deterministic encoding for everything that is signed or hashed, and a
// strict decoder for everything that comes from the wire.
package cborx

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Decoder limits. Message-specific limits (lengths of strings, lists) are
// checked by each message's Validate on top of these.
const (
	MaxNestedLevels  = 8
	MaxArrayElements = 4096
	MaxMapPairs      = 64
)

// ErrNonCanonical means the input decoded but is not in core deterministic
// encoding, so the same value would have two encodings (and two ids).
var ErrNonCanonical = errors.New("cbor: not in core deterministic encoding")

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   MaxNestedLevels,
		MaxArrayElements:  MaxArrayElements,
		MaxMapPairs:       MaxMapPairs,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v in core deterministic encoding.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes data strictly: duplicate map keys, unknown fields,
// indefinite lengths, tags, invalid UTF-8, excess nesting and trailing bytes
// are errors.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

// UnmarshalCanonical is Unmarshal followed by a check that re-encoding v
// gives back data exactly, so each value has one accepted encoding.
func UnmarshalCanonical(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return fmt.Errorf("cbor: re-encoding: %w", err)
	}
	if !bytes.Equal(again, data) {
		return ErrNonCanonical
	}
	return nil
}
