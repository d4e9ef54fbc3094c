package harness

import (
	"os/exec"
	"syscall"
)

// detach puts cmd in a process group of its own, so that signals reach it and its children
// together, and has the kernel kill it if the test process dies first.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
