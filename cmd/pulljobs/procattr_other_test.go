//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's: the cleanups of the test stop every process.
func dieWithParent(*exec.Cmd) {}
