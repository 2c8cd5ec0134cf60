package gitstore

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
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

// KillStrays kills the git processes working in a replica under reposDir
// (GIT_DIR in their environment) and waits, up to two seconds, for them
// to be gone. A daemon killed with SIGKILL takes its git children with it
// (setProcessGroup), but not their children (pack-objects under repack,
// index-pack under fetch), which may still write temporary files; the
// next start kills them before it sweeps. The root's lock means no other
// daemon works there. It returns how many it killed.
func KillStrays(reposDir string) int {
	prefix := "GIT_DIR=" + filepath.Clean(reposDir) + string(filepath.Separator)
	entries, _ := os.ReadDir("/proc")
	var killed []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return bytes.HasPrefix(kv, []byte(prefix)) }) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range killed {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling the kernel: no event tells a stranger's exit
		}
	}
	return len(killed)
}

// alive reports whether pid runs (a zombie has stopped writing).
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
