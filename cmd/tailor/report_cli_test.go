package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReportCLI: tailor report writes its page 0600 through safeio (never through a
// symlink or onto a device), prints the terminal summary or JSON, exits 1 on a diff
// that adds with --fail-on-added, and refuses bad input with exit 2 in one line
// before writing anything.
func TestReportCLI(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	web, nginx := "../../testdata/recordings/webserver.json", "../../testdata/recordings/real/nginx-local.json"
	anomalies := "../../testdata/anomalies/sh-complain.jsonl"
	b := generateBundle(t, dir, "bundle")
	os.WriteFile(p("victim"), []byte("victim\n"), 0o644)
	os.Symlink(p("victim"), p("link"))
	unix.Mkfifo(p("fifo"), 0o600)
	os.WriteFile(p("garbage"), []byte("not json\n"), 0o600)

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report"}, 2, "at least one input"},
		{[]string{"report", "--bogus", web}, 2, "flag provided but not defined"},
		{[]string{"report", p("none.json")}, 2, "no such file"},
		{[]string{"report", p("garbage")}, 2, "neither a recording, a bundle nor an anomalies file"},
		{[]string{"report", p("fifo")}, 2, "unsafe path"},
		{[]string{"report", "/dev/zero"}, 2, "unsafe path"},
		{[]string{"report", filepath.Join(b, "bundle.json")}, 2, "give the bundle's directory"},
		{[]string{"report", web, nginx, b}, 2, "3 recordings or bundles"},
		{[]string{"report", "-o", p("link"), web}, 2, "is a symbolic link"},
		{[]string{"report", "-o", "/dev/null", web}, 2, "unsafe path"},
		{[]string{"report", "-o", dir, web}, 2, "directory"},
		{[]string{"report", "-o", p("nodir/r.html"), web}, 2, "does not exist"},
		{[]string{"report", "--fail-on-added", "-o", p("diff.html"), web, nginx}, 1, "allows more than the old one"},
		{[]string{"report", "--fail-on-added", web, web}, 0, ""},
		{[]string{"report", "-o", p("all.html"), b, anomalies}, 0, ""},
	} {
		code, msg := runTailor(t, c.args...)
		if code != c.code || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("tailor %s: exit %d, stderr %q; want exit %d and one line with %q", strings.Join(c.args, " "), code, msg, c.code, c.want)
		}
	}
	if data, _ := os.ReadFile(p("victim")); string(data) != "victim\n" {
		t.Error("report wrote through a symlink")
	}
	for _, page := range []string{"diff.html", "all.html"} {
		st, err := os.Lstat(p(page))
		if err != nil || st.Mode() != 0o600 {
			t.Errorf("%s: %v, mode %v; want a 0600 file", page, err, st)
		}
	}
	if data, _ := os.ReadFile(p("diff.html")); !bytes.Contains(data, []byte(`data-verdict="fail"`)) {
		t.Error("the page written with --fail-on-added lacks the FAIL verdict")
	}

	// stdout: the terminal summary, or JSON.
	out, err := exec.Command(tailorBin(t), "report", web, nginx).Output()
	if err != nil || !strings.HasPrefix(string(out), "diff ") || !strings.Contains(string(out), "CI verdict: FAIL") {
		t.Errorf("terminal summary: %v\n%s", err, out)
	}
	out, err = exec.Command(tailorBin(t), "report", "--json", b, anomalies).Output()
	var r struct {
		Policies []struct {
			Name  string `json:"name"`
			Archs []struct {
				Allowed int `json:"allowed"`
			} `json:"archs"`
		} `json:"policies"`
		Anomalies []struct {
			Distinct int `json:"distinct"`
		} `json:"anomalies"`
	}
	if err != nil || json.Unmarshal(out, &r) != nil || len(r.Policies) != 1 || r.Policies[0].Archs[0].Allowed == 0 ||
		len(r.Anomalies) != 1 || r.Anomalies[0].Distinct != 25 {
		t.Errorf("--json: %v %+v\n%.300s", err, r, out)
	}
}
