//go:build unix && !linux

package gitstore

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts git in a process group of its own and makes
// cancellation kill the whole group, so helpers git started (pack-objects
// under upload-pack, index-pack under fetch) die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// KillStrays finds no stray git processes here: only Linux tells another
// process's environment cheaply (see proc_linux.go).
func KillStrays(reposDir string) int { return 0 }
