//go:build race

package main

// The end-to-end binaries are built with -race when the tests are.
func init() { raceEnabled = true }
