//go:build !unix

package gitstore

import "os/exec"

// setProcessGroup: without process groups only git itself is killed.
func setProcessGroup(cmd *exec.Cmd) {}
