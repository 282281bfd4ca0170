package docker

import (
	"slices"
	"testing"
)

// TestReplaceSecurityOpt: options the caller gives replace the original's of the same
// kind, whichever separator either spells; the original's other options stay.
func TestReplaceSecurityOpt(t *testing.T) {
	orig := []string{"seccomp:unconfined", "label=disable", "no-new-privileges:false", "apparmor=other"}
	got := replaceSecurityOpt(orig, []string{"seccomp={}", "no-new-privileges", "apparmor=mine"})
	want := []string{"label=disable", "seccomp={}", "no-new-privileges", "apparmor=mine"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
