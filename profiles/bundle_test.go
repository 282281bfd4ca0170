package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bundle of schema 1 has no Landlock plan: diff refuses it with a message saying
// to regenerate, not a decoding error.
func TestLoadBundleRefusesSchema1(t *testing.T) {
	dir := t.TempDir()
	data := `{"kind":"tailor.bundle","schemaVersion":1,"tailor":"old","name":"x","machine":"x86_64","sources":[],"syscalls":[],"execs":[],"files":[],"capabilities":[],"socketFamilies":[]}`
	if err := os.WriteFile(filepath.Join(dir, BundleManifestFile), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadBundle(dir)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "bundle schema version 1 has no Landlock plan") || !strings.Contains(err.Error(), "regenerate the bundle") {
		t.Errorf("err %v", err)
	}
}
