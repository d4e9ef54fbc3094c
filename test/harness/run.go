package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Result is what a command did: its output and exit code.
type Result struct {
	// Command is the command line, for messages.
	Command string
	// Stdout and Stderr are the command's output.
	Stdout, Stderr string
	// Code is the exit code; -1 when the command could not start or was killed (by the
	// timeout, for one; Stderr then says why).
	Code int
}

// Must fails t, showing the command's output, when the command did not exit 0. It returns r,
// so that out := h.Run(t, ...).Must(t).Stdout reads well.
func (r Result) Must(t testing.TB) Result {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: exit code %d\nstdout:\n%s\nstderr:\n%s", r.Command, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// Run runs the program name with args in h (environment Env, working directory Dir, no
// standard input), killing it after Timeout. It never fails t: check the Result, or call Must.
func (h *Home) Run(t testing.TB, name string, args ...string) Result {
	t.Helper()
	return h.run(t, strings.Join(append([]string{name}, args...), " "), name, args...)
}

// Bash runs script with bash -euo pipefail after sourcing scripts/base.sh (which defines
// wait_until_task_finished), like Run.
func (h *Home) Bash(t testing.TB, script string) Result {
	t.Helper()
	base := filepath.Join(h.root, "scripts", "base.sh")
	full := "source " + shellQuote(base) + "\n" + script
	return h.run(t, "bash script:\n"+script, "bash", "-euo", "pipefail", "-c", full)
}

// run runs one command; label names it in messages.
func (h *Home) run(t testing.TB, label, name string, args ...string) Result {
	t.Helper()
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = h.Env()
	cmd.Dir = h.Dir
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	detach(cmd)
	cmd.Cancel = func() error {
		// Kill the whole process group: a script's children too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second

	start := time.Now()
	err := cmd.Run()
	r := Result{Command: label, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Code = -1
		r.Stderr += fmt.Sprintf("\nharness: killed after the %s timeout", timeout)
	case err == nil:
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	default:
		r.Code = -1
		r.Stderr += "\nharness: " + err.Error()
	}
	t.Logf("$ %s => exit %d (%s)", firstLine(label), r.Code, time.Since(start).Round(time.Millisecond))
	return r
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// firstLine returns s up to its first newline, marked when cut.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
