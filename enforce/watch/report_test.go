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
		r.observe("syscall|ptrace", a, uint64(s)*100000, true)
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
		r.observe(fmt.Sprintf("file|/x/%d", i), Anomaly{Kind: "file"}, 1, false)
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
		r.observe("exec|/bin/sh", Anomaly{Kind: "exec"}, 1, false)
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
		r.observe(fmt.Sprintf("file|/x/%d", i), Anomaly{Kind: "file"}, 1, false)
	}
	r.observe("file|/x/0", Anomaly{Kind: "file"}, 1, false) // a shown one repeats
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
