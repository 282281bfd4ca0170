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

// Widenings are reported grouped per path and reason, naming at most max rules.
func TestWideningLines(t *testing.T) {
	p := LandlockPlan{Paths: []LandlockPath{{Path: "/w", Widened: []LandlockWidening{
		{Rule: "/w/a", Access: []string{"make_reg"}, Reason: "name"},
		{Rule: "/w/b", Access: []string{"remove_file"}, Reason: "name"},
		{Rule: "/w/c", Access: []string{"make_dir"}, Reason: "name"},
		{Rule: "/w/a", Access: []string{"write_file", "truncate"}, Reason: "created"},
	}}}}
	got := p.WideningLines(2)
	want := []string{
		"/w gets write_file, truncate beneath it for /w/a (created)",
		"/w gets remove_file, make_dir, make_reg beneath it for /w/a, /w/b and 1 more (bundle.json lists them) (name)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if all := p.WideningLines(0); !strings.Contains(all[1], "/w/a, /w/b, /w/c (name)") {
		t.Errorf("unlimited: %q", all)
	}
}

// diff compares the learned peers and ports, so a CI gate (--fail-on-added) sees a
// new connect or listen port.
func TestDiffNetwork(t *testing.T) {
	older := PolicyOfBundle(&Bundle{Network: BundleNetwork{
		Connects: []Peer{{Family: "AF_INET", Address: "127.0.0.1", Port: 5432}},
		Listens:  []Port{{Family: "AF_INET", Port: 8080}},
	}})
	newer := PolicyOfRecording(&Recording{Network: Network{
		Connects: []Peer{{Family: "AF_INET", Address: "127.0.0.1", Port: 5432}, {Family: "AF_UNIX", Address: "@bus"}},
		Listens:  []Port{{Family: "AF_INET", Port: 8080}},
		Sends:    []Peer{{Family: "AF_INET", Address: "10.0.0.53", Port: 53}},
		Binds:    []Port{{Family: "AF_INET6", Port: 443}},
	}})
	d := Diff(older, newer)
	want := []string{"bind AF_INET6 port 443", "connect AF_UNIX @bus", "send AF_INET 10.0.0.53 port 53"}
	if strings.Join(d.Added.Network, "|") != strings.Join(want, "|") || len(d.Removed.Network) != 0 || d.Added.Empty() {
		t.Errorf("added %q, removed %q", d.Added.Network, d.Removed.Network)
	}
}
