package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordingsThatAreRefused: a recording no tracer on its machine could have
// written is bad input: syscalls of another machine's tables (an x86_64 recording
// with AArch64 syscalls would make a two-architecture bundle), an unknown machine,
// complete beside a reason it is incomplete or beside lost observations.
func TestRecordingsThatAreRefused(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "testdata", "recordings", "webserver.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRecording(good); err != nil {
		t.Fatalf("the unchanged recording: %v", err)
	}
	edit := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("webserver.json lacks %q", old)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"aarch64 syscalls on x86_64", edit(`"syscalls": [`, `"syscalls": [{"arch": "SCMP_ARCH_AARCH64", "names": ["ptrace"]},`), "syscalls of SCMP_ARCH_AARCH64 in a recording made on x86_64"},
		{"arm syscalls on x86_64", edit(`"syscalls": [`, `"syscalls": [{"arch": "SCMP_ARCH_ARM", "names": ["mount"]},`), "syscalls of SCMP_ARCH_ARM"},
		{"unknown machine", edit(`"machine": "x86_64"`, `"machine": "sparc"`), `unknown machine "sparc"`},
		{"no machine", edit(`"machine": "x86_64"`, `"machine": ""`), `unknown machine ""`},
		{"complete and incomplete", edit(`"complete": true`, `"complete": true, "incomplete": ["interrupted before the target finished"]`), "says complete but also incomplete"},
		{"complete with loss", edit(`"ringbufDrops": 0`, `"ringbufDrops": 7`), "says complete but lost 7 observations"},
	} {
		_, err := DecodeRecording(c.data)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want bad input with %q", c.name, err, c.want)
		}
	}
	// An aarch64 recording with its own tables is fine.
	arm := strings.ReplaceAll(string(good), `"SCMP_ARCH_X86_64"`, `"SCMP_ARCH_AARCH64"`)
	arm = strings.Replace(arm, `"machine": "x86_64"`, `"machine": "aarch64"`, 1)
	if _, err := DecodeRecording([]byte(arm)); err != nil {
		t.Errorf("an aarch64 recording: %v", err)
	}
}
