package watch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func lines(t *testing.T, b *bytes.Buffer) []Anomaly {
	t.Helper()
	var out []Anomaly
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var a Anomaly
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, a)
	}
	return out
}

func TestReporterDeduplicatesAndBounds(t *testing.T) {
	var js, human bytes.Buffer
	c := &clock{t: time.Unix(1000, 0)}
	r := newReporter(&js, &human, 10*time.Second, 1000)
	r.now = c.now
	a := Anomaly{Kind: "syscall", Detail: "ptrace returned EPERM", Rule: "r", Action: "blocked", Pid: 7}
	// The kernel reports a looping call about once a second with its running count:
	// a minute of it is a handful of lines.
	for s := 1; s <= 60; s++ {
		r.observe(1, "syscall|ptrace", a, uint64(s)*100000, true)
		r.tick()
		c.t = c.t.Add(time.Second)
	}
	r.final(finalFacts{})
	got := lines(t, &js)
	if len(got) < 3 || got[len(got)-1].Kind != "summary" {
		t.Fatalf("the file does not end with the summary record: %+v", got)
	}
	got = got[:len(got)-1]
	if len(got) < 2 || len(got) > 8 {
		t.Fatalf("%d lines for one looping anomaly, want a handful: %+v", len(got), got)
	}
	if got[0].Repeat || got[0].Count != 100000 {
		t.Errorf("first line %+v", got[0])
	}
	last := got[len(got)-1]
	if !last.Repeat || last.Count != 6000000 {
		t.Errorf("last line %+v, want the final count 6000000", last)
	}
	if byKind, total := r.counts(); total != 6000000 || byKind["syscall"] != 6000000 {
		t.Errorf("counts %v %d", byKind, total)
	}
	if human.Len() == 0 {
		t.Error("no human lines")
	}
}

func TestReporterCapsDistinctAnomalies(t *testing.T) {
	var js bytes.Buffer
	r := newReporter(&js, nil, time.Second, 5)
	for i := 0; i < 50; i++ {
		r.observe(1, fmt.Sprintf("file|/x/%d", i), Anomaly{Kind: "file"}, 1, false)
	}
	r.final(finalFacts{})
	got := lines(t, &js)
	// Five shown, then the summary saying how many more were counted.
	if len(got) != 6 || got[5].Kind != "summary" {
		t.Fatalf("%d lines: %+v", len(got), got)
	}
	var sum Summary
	if err := json.Unmarshal([]byte(strings.Split(strings.TrimSpace(js.String()), "\n")[5]), &sum); err != nil ||
		sum.Suppressed != 45 || sum.Anomalies != 50 || sum.Distinct != 50 {
		t.Errorf("summary %+v, %v", sum, err)
	}
	if _, total := r.counts(); total != 50 {
		t.Errorf("total %d, want 50", total)
	}
}

func TestReporterAddsUserCounts(t *testing.T) {
	var js bytes.Buffer
	r := newReporter(&js, nil, time.Hour, 10)
	for i := 0; i < 3; i++ {
		r.observe(1, "exec|/bin/sh", Anomaly{Kind: "exec"}, 1, false)
	}
	r.final(finalFacts{})
	got := lines(t, &js)
	if len(got) != 3 || got[1].Count != 3 || got[2].Kind != "summary" {
		t.Fatalf("%+v", got)
	}
}

func TestReporterSummaryOfLossAndRefusals(t *testing.T) {
	var js bytes.Buffer
	r := newReporter(&js, nil, time.Hour, 10)
	// A clean run ends with a summary of zeros: the watch ended and nothing was left
	// out.
	r.final(finalFacts{})
	var sum Summary
	if err := json.Unmarshal(js.Bytes(), &sum); err != nil || sum.Kind != "summary" || sum.Lost != 0 || sum.Anomalies != 0 || sum.LostBy != nil {
		t.Fatalf("a clean run's summary %q: %+v %v", js.String(), sum, err)
	}
	js.Reset()
	r.final(finalFacts{lost: 3, lostBy: map[string]uint64{"ringbufDrops": 3}, refusedElsewhere: 2})
	sum = Summary{}
	if err := json.Unmarshal(js.Bytes(), &sum); err != nil || sum.Kind != "summary" || sum.Lost != 3 || sum.LostBy["ringbufDrops"] != 3 || sum.RefusedElsewhere != 2 {
		t.Errorf("summary %q: %+v %v", js.String(), sum, err)
	}
}

// Past the shown and the suppressed bounds an anomaly keeps no state: memory stays
// bounded however many distinct anomalies a long watch sees, and every occurrence is
// still in the totals and the final suppressed line.
func TestReporterMemoryIsBounded(t *testing.T) {
	defer func(old int) { maxSuppressed = old }(maxSuppressed)
	maxSuppressed = 3
	var js bytes.Buffer
	r := newReporter(&js, nil, time.Hour, 2)
	for i := 0; i < 1000; i++ {
		r.observe(1, fmt.Sprintf("file|/x/%d", i), Anomaly{Kind: "file"}, 1, false)
	}
	r.observe(1, "file|/x/0", Anomaly{Kind: "file"}, 1, false) // a shown one repeats
	if len(r.entries) != 5 || len(r.order) != 5 {
		t.Fatalf("%d entries, %d in order: want 5 (2 shown + 3 suppressed)", len(r.entries), len(r.order))
	}
	r.final(finalFacts{})
	if byKind, total := r.counts(); total != 1001 || byKind["file"] != 1001 {
		t.Errorf("total %d (file %d), want 1001", total, byKind["file"])
	}
	var last map[string]any
	got := bytes.Split(bytes.TrimSpace(js.Bytes()), []byte("\n"))
	if err := json.Unmarshal(got[len(got)-1], &last); err != nil {
		t.Fatal(err)
	}
	if last["kind"] != "summary" || last["suppressed"] != float64(3) || last["untracked"] != float64(995) {
		t.Fatalf("last line %v: want 3 distinct suppressed and 995 untracked", last)
	}
}

// A target's refused paths are bounded with counted eviction.
func TestRememberPathIsBounded(t *testing.T) {
	defer func(old int) { maxPaths = old }(maxPaths)
	maxPaths = 10
	tg := &target{paths: map[uint64]string{}}
	for i := uint64(0); i < 100; i++ {
		tg.rememberPath(i, "k")
	}
	tg.rememberPath(99, "k2") // an update is no new key
	if len(tg.paths) != 10 || tg.evicted != 90 || tg.paths[99] != "k2" {
		t.Fatalf("%d paths, %d evicted, 99 -> %q: want 10, 90, k2", len(tg.paths), tg.evicted, tg.paths[99])
	}
}

// A target's end writes its pending counts and its summary, always, and frees its
// anomalies' places under the bounds for the targets still watched; the run's totals
// keep counting it.
func TestReporterEndTarget(t *testing.T) {
	var js bytes.Buffer
	r := newReporter(&js, nil, time.Hour, 2)
	r.observe(1, "syscall|mkdir", Anomaly{Kind: "syscall", Container: "c1"}, 1, true)
	r.observe(1, "syscall|mkdir", Anomaly{Kind: "syscall", Container: "c1"}, 7, true) // a repeat within the hour: no line yet
	r.observe(1, "syscall|chown", Anomaly{Kind: "syscall", Container: "c1"}, 1, true)
	r.observe(2, "syscall|mkdir", Anomaly{Kind: "syscall", Container: "c2"}, 1, true) // past the bound: counted, not shown
	if n := len(lines(t, &js)); n != 2 {
		t.Fatalf("%d lines before the end, want 2", n)
	}
	js.Reset()
	r.endTarget(1, Summary{Target: "b", Container: "c1", Lost: 4})
	got := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(got) != 2 {
		t.Fatalf("end of target 1 wrote %d lines, want the repeat and the summary: %q", len(got), got)
	}
	var last Anomaly
	if err := json.Unmarshal([]byte(got[0]), &last); err != nil || !last.Repeat || last.Count != 7 || last.Container != "c1" {
		t.Errorf("last count line %q: %+v %v", got[0], last, err)
	}
	var sum Summary
	if err := json.Unmarshal([]byte(got[1]), &sum); err != nil || sum.Kind != "summary" || sum.Target != "b" || sum.Container != "c1" ||
		sum.Anomalies != 8 || sum.Distinct != 2 || sum.Suppressed != 0 || sum.Lost != 4 {
		t.Errorf("target summary %q: %+v %v", got[1], sum, err)
	}
	for k, e := range r.entries {
		if e.target == 1 {
			t.Errorf("entry %s of the ended target kept", k)
		}
	}
	// Target 1's places are free: target 2's next new anomaly is shown.
	js.Reset()
	r.observe(2, "syscall|ptrace", Anomaly{Kind: "syscall", Container: "c2"}, 1, true)
	if got := lines(t, &js); len(got) != 1 || got[0].Container != "c2" || got[0].Repeat {
		t.Fatalf("after the end: %+v", got)
	}
	js.Reset()
	r.endTarget(2, Summary{Target: "b", Container: "c2"})
	sum = Summary{}
	if err := json.Unmarshal(bytes.TrimSpace(js.Bytes()), &sum); err != nil || sum.Anomalies != 2 || sum.Distinct != 2 || sum.Suppressed != 1 {
		t.Errorf("summary of target 2 %q: %+v %v", js.String(), sum, err)
	}
	js.Reset()
	r.final(finalFacts{})
	var run Summary
	if err := json.Unmarshal(bytes.TrimSpace(js.Bytes()), &run); err != nil || run.Target != "" || run.Container != "" || run.Anomalies != 10 || run.Distinct != 4 || run.Suppressed != 1 {
		t.Errorf("run summary %q: %+v %v", js.String(), run, err)
	}
	if len(r.entries) != 0 || len(r.order) != 0 || r.shown != 0 || r.suppressed != 0 || len(r.targets) != 0 {
		t.Errorf("state left: %d entries, %d in order, %d shown, %d suppressed, %d targets", len(r.entries), len(r.order), r.shown, r.suppressed, len(r.targets))
	}
}
