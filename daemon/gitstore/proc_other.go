//go:build !unix

package gitstore

import "os/exec"

// setProcessGroup: without process groups only git itself is killed.
func setProcessGroup(cmd *exec.Cmd) {}

// KillStrays finds no stray git processes here: only Linux tells another
// process's environment cheaply (see proc_linux.go).
func KillStrays(reposDir string) int { return 0 }
