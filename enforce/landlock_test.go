package enforce

import (
	"slices"
	"testing"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/tailor-sec/tailor/profiles"
)

func TestAnchor(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		widened       bool
	}{
		{"/etc/passwd", "/etc/passwd", false},
		{"/etc/ssl/", "/etc/ssl", false},
		{"/usr/lib/**", "/usr/lib", false},
		{"/usr/lib/x86_64-linux-gnu/lib*.so*", "/usr/lib/x86_64-linux-gnu", true},
		{"/usr/lib/python3*/**", "/usr/lib", true},
		{"/etc/{passwd,group}", "/etc", true},
		{"@{PROC}/@{pid}/status", "/proc", true},
		{"@{sys}/devices/**", "/sys/devices", false},
		{"/**", "/", false},
	} {
		p, w := anchor(tc.pattern)
		if p != tc.path || w != tc.widened {
			t.Errorf("anchor(%q) = %q, %v; want %q, %v", tc.pattern, p, w, tc.path, tc.widened)
		}
	}
}

func TestLandlockRules(t *testing.T) {
	rules, err := landlockRules([]profiles.FileRule{
		{Pattern: "/work/out/log.txt", Access: []string{profiles.AccessCreate, profiles.AccessWrite}},
		{Pattern: "/work/out/*.tmp", Access: []string{profiles.AccessRead}},
		{Pattern: "/etc/hosts", Access: []string{profiles.AccessRead}},
		{Pattern: "/dev/tty", Access: []string{profiles.AccessRead, profiles.AccessWrite}},
	}, []string{"/usr/bin/env"})
	if err != nil {
		t.Fatal(err)
	}
	want := []pathRule{
		{Path: "/dev/tty", Access: ll.AccessFSReadFile | ll.AccessFSReadDir | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev},
		{Path: "/etc/hosts", Access: ll.AccessFSReadFile | ll.AccessFSReadDir},
		{Path: "/usr/bin/env", Access: ll.AccessFSExecute | ll.AccessFSReadFile},
		// The created file and the glob both land on their directory, merged.
		{Path: "/work/out", Access: createRights | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSReadFile | ll.AccessFSReadDir,
			Widened: []string{"/work/out/*.tmp", "/work/out/log.txt"}},
	}
	if !slices.EqualFunc(rules, want, func(a, b pathRule) bool {
		return a.Path == b.Path && a.Access == b.Access && slices.Equal(a.Widened, b.Widened)
	}) {
		t.Fatalf("rules:\n%+v\nwant:\n%+v", rules, want)
	}
	if rules[0].Access&^landlock.AccessFSSet(handledFS) != 0 {
		t.Errorf("rule grants rights outside the handled set")
	}
	if _, err := landlockRules([]profiles.FileRule{{Pattern: "/x", Access: []string{"delete"}}}, nil); err == nil {
		t.Error("unknown access kind accepted")
	}
}
