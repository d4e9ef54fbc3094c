package main

import (
	"os"
	"syscall"
)

// exitWithParent asks Linux to send this process SIGTERM when its parent
// dies, so stopping "go run" (which does not pass SIGTERM on) or the
// script that started fakehub also stops fakehub and cleans up.
func exitWithParent() {
	ppid := os.Getppid()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() != ppid { // the parent died before the request
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
