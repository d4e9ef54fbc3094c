package upstream

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills the child when this process dies, so a crashed
// or timed-out test leaves no registry running.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
