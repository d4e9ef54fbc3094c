//go:build unix && !linux

package harness

import (
	"os/exec"
	"syscall"
)

// detach puts cmd in a process group of its own, so that signals reach it and its children
// together.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
