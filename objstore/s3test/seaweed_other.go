//go:build !unix

package s3test

import (
	"os/exec"
	"time"
)

func setProcessGroup(*exec.Cmd) {}

func stopProcessGroup(cmd *exec.Cmd, exited <-chan struct{}, _ time.Duration) {
	_ = cmd.Process.Kill()
	<-exited
}
