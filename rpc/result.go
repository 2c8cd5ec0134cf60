package rpc

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sync"
)

// Results are encoded in one place, so that one rule holds for every method:
// a nil slice is sent as [] rather than null (spec/rpc.md §2, "Lists are
// never null"). A Service may leave any list of a result nil — the result
// itself, a field, a field of an element — and neither it nor the handlers
// need to care.

// encodeResult marshals a method's result with every nil slice in it
// encoded as [].
func encodeResult(v any) ([]byte, error) {
	if v == nil {
		return json.Marshal(nil)
	}
	return json.Marshal(emptySlices(reflect.ValueOf(v)).Interface())
}

// emptySlices returns v with every nil slice reachable through exported
// struct fields, slice, array and map elements, pointers and interfaces
// replaced by an empty one. What changes is copied, never written in place:
// the Service's data stays as it was, even if it shares it with others.
// Values whose types encode themselves (json.Marshaler,
// encoding.TextMarshaler) and byte slices (base64 strings in JSON, not
// lists) are left as they are.
func emptySlices(v reflect.Value) reflect.Value {
	if !mayHoldNilSlice(v.Type()) {
		return v
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			return reflect.MakeSlice(v.Type(), 0, 0)
		}
		if !mayHoldNilSlice(v.Type().Elem()) {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(emptySlices(v.Index(i)))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(emptySlices(v.Index(i)))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v) // unexported fields, which JSON ignores, are kept as they are
		for i := range v.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(emptySlices(v.Field(i)))
			}
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v // an object, not a list
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), emptySlices(it.Value()))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(emptySlices(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(emptySlices(v.Elem()))
		return out
	}
	return v
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()

	// nilSliceTypes caches mayHoldNilSlice: reflect.Type → bool.
	nilSliceTypes sync.Map
)

// mayHoldNilSlice reports whether a value of type t can hold a nil slice
// that emptySlices replaces, so that values that cannot are not copied. It
// errs on the side of true.
func mayHoldNilSlice(t reflect.Type) bool {
	if v, ok := nilSliceTypes.Load(t); ok {
		return v.(bool)
	}
	// A type that refers to itself is taken as holding one while its
	// answer is worked out: true is always safe.
	nilSliceTypes.Store(t, true)
	v := holdsNilSlice(t)
	nilSliceTypes.Store(t, v)
	return v
}

func holdsNilSlice(t reflect.Type) bool {
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return false // it encodes itself
	}
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	case reflect.Array, reflect.Map, reflect.Pointer:
		return mayHoldNilSlice(t.Elem())
	case reflect.Interface:
		return true // whatever it will hold
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && f.Tag.Get("json") != "-" && mayHoldNilSlice(f.Type) {
				return true
			}
		}
	}
	return false
}
