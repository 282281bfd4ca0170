package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

const (
	nginxRecording = "../testdata/recordings/real/nginx-local.json"
	redisRecording = "../testdata/recordings/real/redis-local.json"
	oldNginx       = "../testdata/recordings/webserver.json"
	anomaliesFile  = "../testdata/anomalies/sh-complain.jsonl"
	categorised    = "../testdata/anomalies/categorised.jsonl"
)

// TestBundleViews generates the bundle of every example recording and checks the
// report's facts against the bundle's own manifest.
func TestBundleViews(t *testing.T) {
	dir := t.TempDir()
	for _, rec := range exampleRecordings(t) {
		bdir := writeBundle(t, rec, dir)
		t.Run(filepath.Base(bdir), func(t *testing.T) {
			b, err := profiles.LoadBundle(bdir)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Build([]string{bdir})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Policies) != 1 || r.Diff != nil || len(r.Anomalies) != 0 {
				t.Fatalf("one bundle gave %+v", r)
			}
			v := r.Policies[0]
			if v.Type != inputBundle || v.Name != b.Name || !v.Complete || len(v.Problems) != 0 {
				t.Errorf("type %s name %s complete %v problems %v", v.Type, v.Name, v.Complete, v.Problems)
			}
			genSyscalls := map[string]bool{}
			for _, g := range b.Generalised {
				if g.Kind == profiles.GeneralisedSyscall {
					genSyscalls[g.Added] = true
				}
			}
			if len(v.Archs) != len(b.Syscalls) {
				t.Fatalf("%d archs, bundle has %d", len(v.Archs), len(b.Syscalls))
			}
			for i, a := range v.Archs {
				var names []string
				gens := 0
				for _, g := range a.Groups {
					for _, s := range g.Syscalls {
						names = append(names, s.Name)
						if SyscallKind(s.Name) != g.Kind {
							t.Errorf("%s listed under %s", s.Name, g.Kind)
						}
						if s.Rule != "" {
							gens++
						}
					}
				}
				slices.Sort(names)
				if want := b.Syscalls[i].Names; a.Allowed != len(want) || !slices.Equal(names, want) {
					t.Errorf("%s: report lists %v, bundle allows %v", a.Arch, names, want)
				}
				wantGens := 0
				for _, n := range b.Syscalls[i].Names {
					if genSyscalls[n] {
						wantGens++
					}
				}
				if a.Generalised != wantGens || gens != wantGens {
					t.Errorf("%s: %d generalised (%d marked), bundle.json generalised %d of its names", a.Arch, a.Generalised, gens, wantGens)
				}
				if a.DockerDefault < 250 {
					t.Errorf("%s: Docker default %d", a.Arch, a.DockerDefault)
				}
			}
			if v.CapsAdded != len(b.Capabilities) || v.DockerCaps != 14 {
				t.Errorf("caps %d of %d, bundle adds %v", v.CapsAdded, v.DockerCaps, b.Capabilities)
			}
			// Every file rule is in the tree once, the widened ones marked.
			widened := map[string]bool{}
			for _, p := range b.Landlock.Paths {
				for _, w := range p.Widened {
					widened[w.Rule] = true
				}
			}
			inTree := map[string]*FileRuleView{}
			walk(v.Files, func(n *FileNode) {
				if n.Rule != nil {
					if inTree[n.Rule.Pattern] != nil {
						t.Errorf("%s twice in the tree", n.Rule.Pattern)
					}
					inTree[n.Rule.Pattern] = n.Rule
				}
			})
			for _, f := range b.Files {
				r := inTree[f.Pattern]
				if r == nil {
					t.Errorf("file rule %s missing from the tree", f.Pattern)
					continue
				}
				if !slices.Equal(r.Access, f.Access) || (len(r.Widened) > 0) != widened[f.Pattern] {
					t.Errorf("%s: access %v widened %v, bundle: %v widened %v", f.Pattern, r.Access, r.Widened, f.Access, widened[f.Pattern])
				}
			}
			if v.Widened != len(widened) || v.Files.Widened != len(widened) || v.FileRules != len(b.Files) {
				t.Errorf("widened %d (tree %d), bundle widens %d rules; %d file rules, bundle %d", v.Widened, v.Files.Widened, len(widened), v.FileRules, len(b.Files))
			}
			if !slices.Contains(v.Hardening, "--security-opt no-new-privileges") || !slices.Contains(v.Hardening, "--cap-drop ALL") {
				t.Errorf("hardening %v", v.Hardening)
			}
			page, err := r.HTML([]string{bdir}, "test")
			if err != nil {
				t.Fatal(err)
			}
			if refs := externalRefs(t, page); len(refs) > 0 {
				t.Errorf("page refers to other hosts: %v", refs)
			}
			again, _ := Build([]string{bdir})
			page2, _ := again.HTML([]string{bdir}, "test")
			if !bytes.Equal(page, page2) {
				t.Error("two renderings of the same bundle differ")
			}
		})
	}
}

func walk(n *FileNode, f func(*FileNode)) {
	f(n)
	for _, c := range n.Children {
		walk(c, f)
	}
}

// TestRecordingView: a recording is shown as recorded, and an incomplete one says so.
func TestRecordingView(t *testing.T) {
	r, err := Build([]string{redisRecording})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := profiles.LoadRecording(redisRecording)
	v := r.Policies[0]
	if v.Type != inputRecording || !v.Complete || v.FileRules != len(rec.Files) || v.Archs[0].Allowed != len(rec.Syscalls[0].Names) {
		t.Errorf("recording view %+v", v)
	}
	rec.Complete = false
	rec.Incomplete = []string{"ring buffer full"}
	rec.Loss.RingbufDrops = 42
	path := filepath.Join(t.TempDir(), "incomplete.json")
	data, _ := json.Marshal(rec)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err = Build([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Policies[0]; v.Complete || v.LossTotal != 42 {
		t.Errorf("incomplete recording shown as complete %v, loss %d", v.Complete, v.LossTotal)
	}
	page, _ := r.HTML([]string{path}, "test")
	if !bytes.Contains(page, []byte(`class="banner bad" id="completeness" data-complete="false">INCOMPLETE: 42 observations lost`)) {
		t.Error("the page does not say, in red, that the recording is incomplete")
	}
}

// TestDiffVerdict: the verdict is tailor diff --fail-on-added's.
func TestDiffVerdict(t *testing.T) {
	dir := t.TempDir()
	merged := profiles.Merge(mustRecording(t, oldNginx), mustRecording(t, nginxRecording))
	mergedPath := filepath.Join(dir, "merged.json")
	data, _ := json.Marshal(merged)
	if err := os.WriteFile(mergedPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		old, new string
		verdict  string
		added    bool
		removed  bool
	}{
		{oldNginx, nginxRecording, VerdictFail, true, true},
		{nginxRecording, nginxRecording, VerdictPass, false, false},
		{mergedPath, nginxRecording, VerdictPass, false, true},
		{nginxRecording, mergedPath, VerdictFail, true, false},
	} {
		r, err := Build([]string{c.old, c.new})
		if err != nil {
			t.Fatal(err)
		}
		d := r.Diff
		if d == nil || len(r.Policies) != 0 {
			t.Fatalf("two recordings gave no diff: %+v", r)
		}
		if d.Verdict != c.verdict || (d.Added > 0) != c.added || (d.Removed > 0) != c.removed {
			t.Errorf("%s -> %s: verdict %s, %d added, %d removed", c.old, c.new, d.Verdict, d.Added, d.Removed)
		}
		n := 0
		for _, cat := range d.Categories {
			n += len(cat.Added)
		}
		if n != d.Added {
			t.Errorf("categories list %d added, total says %d", n, d.Added)
		}
	}
}

// TestBundleDiff: generalisation shows as added syscalls between the strict and the
// generalised bundle of one recording, and the files whose bytes differ are named.
func TestBundleDiff(t *testing.T) {
	dir := t.TempDir()
	rec := mustRecording(t, nginxRecording)
	write := func(name string, strict bool) string {
		out := filepath.Join(dir, name)
		b, err := generate.Generate([]*profiles.Recording{rec}, generate.Options{Dir: out, Strict: strict, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := generate.Write(out, b, nil); err != nil {
			t.Fatal(err)
		}
		return out
	}
	strict, general := write("strict", true), write("general", false)
	r, err := Build([]string{strict, general})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Diff
	var syscalls []string
	for _, c := range d.Categories {
		if c.Name == "syscalls" {
			for _, it := range c.Added {
				syscalls = append(syscalls, it.Text)
			}
		}
	}
	if d.Verdict != VerdictFail || !slices.Contains(syscalls, "x86_64 dup3") || !slices.Contains(d.Changed, profiles.BundleSeccompFile) {
		t.Errorf("strict -> generalised: verdict %s, added syscalls %v, changed %v", d.Verdict, syscalls, d.Changed)
	}
	if r, _ := Build([]string{general, strict}); r.Diff.Verdict != VerdictPass || r.Diff.Removed == 0 {
		t.Errorf("generalised -> strict: %s, %d removed", r.Diff.Verdict, r.Diff.Removed)
	}
}

func mustRecording(t *testing.T, path string) *profiles.Recording {
	t.Helper()
	r, err := profiles.LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAnomalyView reads a real anomalies file: `tailor enforce --mode complain` on a
// shell that ran `uname -a` six times and cat, sleep, id, mkdir outside its profile
// (testdata/anomalies/README.md).
func TestAnomalyView(t *testing.T) {
	r, err := Build([]string{anomaliesFile})
	if err != nil {
		t.Fatal(err)
	}
	v := r.Anomalies[0]
	firsts, lines := 0, 0
	data, _ := os.ReadFile(anomaliesFile)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		lines++
		if !strings.Contains(l, `"repeat":true`) {
			firsts++
		}
	}
	if v.Distinct != firsts || v.Lines != lines || v.Blocked != 0 || v.Allowed != v.Total || v.Suppressed != 0 || v.Lost != 0 {
		t.Errorf("distinct %d (file has %d first lines), lines %d of %d, blocked %d allowed %d total %d", v.Distinct, firsts, v.Lines, lines, v.Blocked, v.Allowed, v.Total)
	}
	i := slices.IndexFunc(v.Anomalies, func(d Distinct) bool { return d.Detail == "exec of /usr/bin/uname by sh" })
	if i < 0 || v.Anomalies[i].Count != 6 {
		t.Errorf("uname ran 6 times: %+v", v.Anomalies)
	}
	dots := 0
	for _, row := range v.Timeline.Rows {
		for _, d := range row.Dots {
			dots += d.Lines
		}
	}
	if dots != lines || len(v.Timeline.Rows) != len(v.ByKind) {
		t.Errorf("timeline has %d dots in %d rows for %d lines and %d kinds", dots, len(v.Timeline.Rows), lines, len(v.ByKind))
	}
	if len(v.ByCategory) != 0 || len(v.BySeverity) != 0 {
		t.Error("categories or severities invented for lines that have none")
	}

	// The watcher's real output with one anomaly of every category (regenerated by
	// go test ./cmd/tailor -run TestAnomalyCategories -update).
	r, err = Build([]string{categorised})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Anomalies[0]
	if c.Suppressed != 0 || c.Lost != 0 || c.RefusedElsewhere == 0 || c.Distinct != 15 || c.Blocked != c.Total-1 ||
		len(c.ByCategory) != 14 || len(c.BySeverity) != 4 {
		t.Errorf("categorised: suppressed %d lost %d refused elsewhere %d, %d distinct, %d of %d blocked, categories %v severities %v",
			c.Suppressed, c.Lost, c.RefusedElsewhere, c.Distinct, c.Blocked, c.Total, c.ByCategory, c.BySeverity)
	}

	// What the watcher did not show: its closing summary record.
	summary := filepath.Join(t.TempDir(), "summary.jsonl")
	os.WriteFile(summary, []byte(`{"kind":"exec","detail":"x","rule":"y","action":"blocked","count":1}`+"\n"+
		`{"kind":"summary","anomalies":40,"distinct":12,"suppressed":3,"lost":17,"refusedElsewhere":1}`+"\n"), 0o600)
	r, err = Build([]string{summary})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Anomalies[0]; s.Suppressed != 3 || s.Lost != 17 || s.RefusedElsewhere != 1 || s.Distinct != 1 {
		t.Errorf("summary record: suppressed %d lost %d refused elsewhere %d distinct %d", s.Suppressed, s.Lost, s.RefusedElsewhere, s.Distinct)
	}

	numeric := filepath.Join(t.TempDir(), "numeric.jsonl")
	os.WriteFile(numeric, []byte(`{"kind":"exec","detail":"x","rule":"y","action":"blocked","count":2,"severity":3,"category":"process"}`+"\n"), 0o600)
	r, err = Build([]string{numeric})
	if err != nil || r.Anomalies[0].BySeverity[0].Name != "3" || r.Anomalies[0].Blocked != 2 {
		t.Errorf("numeric severity: %v %+v", err, r.Anomalies)
	}

	// A night of repeats: 50000 lines of 100 distinct anomalies stay a light page.
	var night bytes.Buffer
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50000 {
		fmt.Fprintf(&night, `{"time":%q,"kind":"syscall","detail":"call %d","rule":"r","action":"blocked","count":%d,"repeat":%v}`+"\n",
			start.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), i%100, i/100+1, i >= 100)
	}
	nightPath := filepath.Join(t.TempDir(), "night.jsonl")
	os.WriteFile(nightPath, night.Bytes(), 0o600)
	r, err = Build([]string{nightPath})
	if err != nil {
		t.Fatal(err)
	}
	n := r.Anomalies[0]
	page, _ := r.HTML([]string{nightPath}, "test")
	if n.Distinct != 100 || n.Total != 100*500 || len(n.Timeline.Rows[0].Dots) > 2*(tlRight-tlLeft+1) || len(page) > 2<<20 {
		t.Errorf("night: %d distinct, %d total, %d dots, page %d bytes", n.Distinct, n.Total, len(n.Timeline.Rows[0].Dots), len(page))
	}

	empty := filepath.Join(t.TempDir(), "none.jsonl")
	os.WriteFile(empty, nil, 0o600)
	r, err = Build([]string{empty})
	if err != nil || r.Anomalies[0].Total != 0 || r.Anomalies[0].Timeline != nil {
		t.Errorf("empty anomalies file: %v %+v", err, r)
	}
}

// TestBadInput: every input that is not a recording, a bundle or an anomalies file is
// bad input (exit 2) with its name in the message.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bundle := writeBundle(t, nginxRecording, dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name   string
		inputs []string
		want   string
	}{
		{"none", nil, "at least one input"},
		{"missing", []string{filepath.Join(dir, "nope.json")}, "nope.json"},
		{"garbage", []string{write("garbage.txt", "hello\n")}, "garbage.txt"},
		{"broken line", []string{write("broken.jsonl", `{"kind":"exec","detail":"x","rule":"y"}`+"\n{oops\n")}, "line 2"},
		{"manifest", []string{filepath.Join(bundle, profiles.BundleManifestFile)}, "directory"},
		{"not a bundle", []string{dir + "/"}, "not a bundle"},
		{"three", []string{nginxRecording, redisRecording, oldNginx}, "3 recordings or bundles"},
	} {
		_, err := Build(c.inputs)
		if !errors.Is(err, fail.ErrBadInput) || fail.Code(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (code %d), want bad input naming %q", c.name, err, fail.Code(err), c.want)
		}
	}
}
