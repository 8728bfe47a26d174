package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd when the test process dies, even
// when it dies without running its cleanups (a -timeout panic, a SIGKILL):
// a trial never leaves a nats-server or a worker running.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
