package gitstore

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts git in a process group of its own and makes
// cancellation kill the whole group, so helpers git started (pack-objects
// under upload-pack, index-pack under fetch) die with it. Git also dies
// with the daemon (the parent-death signal): a daemon killed mid-fetch
// leaves no git writing temporary files into a replica after the next
// start has swept them.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
