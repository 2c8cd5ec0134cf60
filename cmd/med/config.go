package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// configFile is the name of med's configuration file in the node's root.
// Its keys are med's long flag names; a flag given on the command line wins
// over the file. README.md's "Configuration" section documents it.
const configFile = "config.json"

// maxConfigSize bounds the file: a real one is a few hundred bytes.
const maxConfigSize = 1 << 20

// notInFile are med's flags that have no key in the file: the file lives in
// the root, and the others do not configure the node.
var notInFile = map[string]bool{"root": true, "version": true, "help": true}

// configSource says where each setting came from, for error messages.
type configSource struct {
	path string
	keys map[string]bool // the keys whose value the file gave
}

// name is how an error names setting flag: the file and key if the file
// set it, else the flag.
func (s configSource) name(flag string) string {
	if s.keys[flag] {
		return fmt.Sprintf("%s: key %q", s.path, flag)
	}
	return "--" + flag
}

// loadConfig sets every flag of fs that the command line left unset and
// the file at path gives. A missing file is no error. Every error is one
// line that names the file (and the key).
func loadConfig(fset *pflag.FlagSet, path string) (configSource, error) {
	src := configSource{path: path, keys: map[string]bool{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return src, nil
	}
	if err != nil {
		return src, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return src, fmt.Errorf("%s: larger than %d bytes", path, maxConfigSize)
	}
	keys, values, err := decodeConfig(data)
	if err != nil {
		return src, fmt.Errorf("%s: %v", path, err)
	}
	for _, key := range keys {
		f := fset.Lookup(key)
		if f == nil || notInFile[key] {
			return src, fmt.Errorf("%s: unknown key %q (known keys: %s)", path, key, strings.Join(configKeys(fset), ", "))
		}
		if fset.Changed(key) {
			continue // the command line wins
		}
		args, err := flagValues(f.Value.Type(), values[key])
		if err == nil {
			for _, a := range args {
				if err = f.Value.Set(a); err != nil {
					break
				}
			}
		}
		if err != nil {
			return src, fmt.Errorf("%s: key %q: %v", path, key, err)
		}
		src.keys[key] = true
	}
	return src, nil
}

// configPath is the configuration file of root.
func configPath(root string) string { return filepath.Join(root, configFile) }

// decodeConfig decodes one JSON object, refusing duplicate keys and data
// after it, and returns its keys in order with their raw values.
func decodeConfig(data []byte) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("not a JSON object")
	}
	var keys []string
	values := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("invalid JSON: %v", err)
		}
		key := tok.(string) // inside an object, the decoder only yields string keys here
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("invalid JSON at key %q: %v", key, err)
		}
		if _, dup := values[key]; dup {
			return nil, nil, fmt.Errorf("key %q given twice", key)
		}
		keys, values[key] = append(keys, key), v
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, nil, errors.New("data after the JSON object")
	}
	return keys, values, nil
}

// flagValues turns a JSON value into the arguments of a flag of type typ
// (pflag's Type names): a list for a repeatable flag, else one value of
// the JSON type that matches.
func flagValues(typ string, raw json.RawMessage) ([]string, error) {
	var s string
	var n json.Number
	var b bool
	switch typ {
	case "stringArray", "stringSlice":
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("want a list of strings, got %s", raw)
		}
		return list, nil
	case "bool":
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("want true or false, got %s", raw)
		}
		return []string{strconv.FormatBool(b)}, nil
	case "int", "int64", "uint", "uint64":
		if json.Unmarshal(raw, &n) != nil || strings.ContainsAny(n.String(), ".eE") {
			return nil, fmt.Errorf("want a whole number, got %s", raw)
		}
		return []string{n.String()}, nil
	case "size":
		if json.Unmarshal(raw, &n) == nil {
			return []string{n.String()}, nil
		}
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("want a string, got %s", raw)
	}
	return []string{s}, nil
}

// configKeys lists the keys the file accepts: med's long flags.
func configKeys(fset *pflag.FlagSet) []string {
	var keys []string
	fset.VisitAll(func(f *pflag.Flag) {
		if !notInFile[f.Name] {
			keys = append(keys, f.Name)
		}
	})
	sort.Strings(keys)
	return keys
}
