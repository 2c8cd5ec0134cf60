package cborx

import (
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// IsLimitError reports whether err (or an error it wraps) is the decoder
// refusing input that exceeds MaxNestedLevels, MaxArrayElements or
// MaxMapPairs. Callers classify such errors as "too large" rather than
// "malformed" without importing the CBOR library themselves.
func IsLimitError(err error) bool {
	var (
		arr  *cbor.MaxArrayElementsError
		mp   *cbor.MaxMapPairsError
		nest *cbor.MaxNestedLevelError
	)
	return errors.As(err, &arr) || errors.As(err, &mp) || errors.As(err, &nest)
}
