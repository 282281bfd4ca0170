package fswait

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestUntilSeesAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	hasTwo := func() bool { b, _ := os.ReadFile(path); return len(b) >= 2 }
	go func() {
		for _, s := range []string{"a", "b"} {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				return
			}
			f.WriteString(s)
			f.Close()
		}
	}()
	ok, err := Until(path, time.Minute, hasTwo)
	if err != nil || !ok {
		t.Fatalf("Until: %v %v", ok, err)
	}
}

func TestUntilTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	start := time.Now()
	ok, err := Until(path, 50*time.Millisecond, func() bool { return false })
	if err != nil || ok {
		t.Fatalf("Until on a file nobody writes: %v %v", ok, err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("returned before the timeout")
	}
}
