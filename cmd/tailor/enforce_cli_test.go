package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestContainerCLIErrors: this build has no tracer, so tailor watch refuses in one
// line (exit 9); enforce --container with a COMMAND or a local-only flag is bad input
// (exit 2). None of these needs root or Docker.
func TestContainerCLIErrors(t *testing.T) {
	bin := tailorBin(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"watch", "--profile", "/nonexistent", "--container", "web"}, 9, "tailor: refused: profile directory"},
		{[]string{"enforce", "--profile", "/nonexistent", "--container", "web", "--", "true"}, 2, "give no COMMAND"},
		{[]string{"enforce", "--profile", "/nonexistent", "--container", "web", "--allow-partial"}, 2, "--allow-partial is for local mode"},
		{[]string{"enforce", "--profile", "/nonexistent", "--workload", "true", "--", "true"}, 2, "--workload is for container mode"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, c.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		msg := strings.TrimSpace(stderr.String())
		if exitCode(err) != c.code || !strings.Contains(msg, c.want) || strings.Count(msg, "\n") != 0 {
			t.Errorf("tailor %v: exit %d, stderr %q; want exit %d and one line with %q", c.args, exitCode(err), msg, c.code, c.want)
		}
	}
}
