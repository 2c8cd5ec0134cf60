//go:build !unix

package main

import "io"

// terminalColumns is 0 here: repo list keeps to listWidth.
func terminalColumns(io.Writer) int { return 0 }
