// Package testpriv decides what a privileged test does when it lacks what it needs:
// with CI=true that is a failure (CI must run the privileged tests, never skip them);
// elsewhere the test is skipped with the reason.
package testpriv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable fails the test in CI and skips it elsewhere, with reason.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and %s", reason)
	}
	t.Skip(reason)
}

// RequireRoot stops a test that needs root when it has not got it.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Getenv("TAILOR_UNPRIVILEGED") == "1" {
		Unavailable(t, "TAILOR_UNPRIVILEGED=1: privileged test not run")
		return
	}
	if os.Geteuid() != 0 {
		Unavailable(t, "this test needs root (BPF, seccomp): run it with sudo")
	}
}
