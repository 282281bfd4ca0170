package watch

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tailor-sec/tailor/enforce"
)

// Anomaly is one report line: something a target did outside its profile.
type Anomaly struct {
	Time time.Time `json:"time"`
	// Kind is syscall, socket, capability, file or exec.
	Kind string `json:"kind"`
	// Category names the attack step the anomaly looks like (shell-spawned,
	// sensitive-file-read, ...) and Severity how grave it is (critical, high, medium,
	// low): see docs/anomalies.md.
	Category string `json:"category"`
	Severity string `json:"severity"`
	Target   string `json:"target"`
	// Service is the Compose service of the target, when it is one.
	Service   string `json:"service,omitempty"`
	Container string `json:"container,omitempty"`
	Pid       int    `json:"pid,omitempty"`
	Comm      string `json:"comm,omitempty"`
	// Executable is the program the process ran when it was reported ("" when it
	// had already exited).
	Executable string `json:"executable,omitempty"`
	Detail     string `json:"detail"`
	// Rule says which part of the profile the behaviour is outside of.
	Rule string `json:"rule"`
	// Action is "blocked" when the kernel refused it, "allowed" when it happened
	// (complain mode, or a rule tailor only watches).
	Action string `json:"action"`
	// Count is how many times it happened so far.
	Count uint64 `json:"count"`
	// Repeat marks a later line for an anomaly already reported, with its new count.
	Repeat     bool `json:"repeat,omitempty"`
	DockerExec bool `json:"dockerExec,omitempty"`
}

// entry is the reporter's state for one distinct anomaly.
type entry struct {
	a        Anomaly
	shown    bool
	reported uint64 // count on the last line written
	lastLine time.Time
}

// reporter deduplicates anomalies and bounds what it writes: each distinct anomaly
// gets one line when first seen, then at most one line per repeatEvery while its
// count grows, and a last one at the end; past maxShown distinct anomalies new ones
// are only counted. A target looping on a forbidden call therefore writes a few lines,
// not one per call. Memory is bounded too: past maxShown shown and maxSuppressed
// suppressed anomalies, a new one keeps no state of its own and is only counted
// (untracked), so a target that makes endless distinct anomalies (a path per call)
// cannot grow a long watch's memory.
type reporter struct {
	mu          sync.Mutex
	json        io.Writer
	human       io.Writer
	now         func() time.Time
	repeatEvery time.Duration
	maxShown    int

	entries    map[string]*entry
	order      []string
	shown      int
	suppressed int
	// untracked counts occurrences of anomalies past every bound: not shown and not
	// kept, so their repeats cannot be told from new ones.
	untracked uint64
	byKind    map[string]uint64
	total     uint64
	err       error
}

// maxSuppressed bounds the anomalies kept (to count their repeats) beyond the shown.
var maxSuppressed = 4096

func newReporter(jsonOut, human io.Writer, repeatEvery time.Duration, maxShown int) *reporter {
	return &reporter{json: jsonOut, human: human, now: time.Now, repeatEvery: repeatEvery, maxShown: maxShown,
		entries: map[string]*entry{}, byKind: map[string]uint64{}}
}

// observe records n more occurrences of the anomaly with key, or, when cumulative,
// that it occurred n times in all so far (the kernel's own count).
func (r *reporter) observe(key string, a Anomaly, n uint64, cumulative bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[key]
	if !ok && r.shown >= r.maxShown && r.suppressed >= maxSuppressed {
		if cumulative {
			n = max(n, 1) // a kernel count of a key not kept: its repeats are in it
		}
		r.untracked += n
		r.byKind[a.Kind] += n
		r.total += n
		return
	}
	if !ok {
		e = &entry{a: a}
		r.entries[key] = e
		r.order = append(r.order, key)
	}
	before := e.a.Count
	if cumulative {
		e.a.Count = max(before, n)
	} else {
		e.a.Count = before + n
	}
	delta := e.a.Count - before
	r.byKind[a.Kind] += delta
	r.total += delta
	if !ok {
		if r.shown >= r.maxShown {
			if r.suppressed == 0 {
				r.writeHuman(fmt.Sprintf("tailor: more than %d distinct anomalies: further new ones are counted, not shown", r.maxShown))
			}
			r.suppressed++
			return
		}
		r.shown++
		e.shown = true
		r.write(e, false)
		return
	}
	// A process that had exited leaves a later report without pid: keep the first.
	if e.shown && delta > 0 && r.now().Sub(e.lastLine) >= r.repeatEvery {
		r.write(e, true)
	}
}

// tick writes the repeat lines that are due.
func (r *reporter) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.order {
		e := r.entries[k]
		if e.shown && e.a.Count > e.reported && r.now().Sub(e.lastLine) >= r.repeatEvery {
			r.write(e, true)
		}
	}
}

// Summary is the closing record of an anomalies file, written at every end of a
// watch, so what the lines do not show (suppressed, lost, left unattributed) is said
// in the output itself, and a file without it is one whose watch did not end (tailor
// was killed).
type Summary struct {
	Time time.Time `json:"time"`
	// Kind is "summary".
	Kind string `json:"kind"`
	// Anomalies counts every occurrence, repeats included; Distinct the distinct ones.
	Anomalies uint64 `json:"anomalies"`
	Distinct  int    `json:"distinct"`
	// Suppressed counts distinct anomalies counted but not shown (past MaxShown).
	Suppressed int `json:"suppressed"`
	// Untracked counts occurrences of anomalies past every bound of tailor's memory:
	// in the totals, neither shown nor counted apart.
	Untracked uint64 `json:"untracked,omitempty"`
	// Lost counts observations the tracer could not deliver (full ring buffer or
	// maps, unreadable arguments, decode errors): anomalies may be missing.
	Lost uint64 `json:"lost"`
	// LostBy splits Lost by the tracer's counter (ringbufDrops, anomaliesFull...).
	LostBy map[string]uint64 `json:"lostBy,omitempty"`
	// RefusedElsewhere counts distinct refused operations the profile's rules grant:
	// file permissions or another security module refused them, not the profile.
	RefusedElsewhere uint64 `json:"refusedElsewhere"`
}

// finalFacts are what the watcher knows at the end besides the anomalies.
type finalFacts struct {
	lost, refusedElsewhere uint64
	lostBy                 map[string]uint64
}

// final writes the last counts, then the closing summary record.
func (r *reporter) final(f finalFacts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.order {
		e := r.entries[k]
		if e.shown && e.a.Count > e.reported {
			r.write(e, true)
		}
	}
	if r.suppressed > 0 {
		msg := fmt.Sprintf("tailor: %d more distinct anomalies were counted but not shown", r.suppressed)
		if r.untracked > 0 {
			msg += fmt.Sprintf(", and %d more occurrences of anomalies past tailor's memory bound (%d kept)", r.untracked, r.maxShown+maxSuppressed)
		}
		r.writeHuman(msg)
	}
	if f.lost > 0 {
		r.writeHuman(fmt.Sprintf("tailor: %d observations were lost: anomalies may be missing", f.lost))
	}
	if f.refusedElsewhere > 0 {
		r.writeHuman(fmt.Sprintf("tailor: %d refused operations were allowed by the profile (file permissions or another module refused them): not anomalies", f.refusedElsewhere))
	}
	if r.json != nil {
		line, err := json.Marshal(Summary{Time: r.now(), Kind: "summary", Anomalies: r.total, Distinct: len(r.entries),
			Suppressed: r.suppressed, Untracked: r.untracked, Lost: f.lost, LostBy: f.lostBy, RefusedElsewhere: f.refusedElsewhere})
		if err != nil {
			r.setErr(err)
		} else {
			r.writeLine(r.json, string(line))
		}
	}
	if r.total > 0 {
		r.writeHuman(fmt.Sprintf("tailor: %d anomalies (%d distinct)", r.total, len(r.entries)))
	}
}

func (r *reporter) write(e *entry, repeat bool) {
	a := e.a
	a.Time = r.now()
	a.Repeat = repeat
	e.reported = a.Count
	e.lastLine = a.Time
	if r.json != nil {
		line, err := json.Marshal(a)
		if err != nil {
			r.setErr(err)
			return
		}
		r.writeLine(r.json, string(line))
	}
	if repeat {
		r.writeHuman(fmt.Sprintf("tailor: anomaly repeated: %s %s, %d times so far", a.Kind, a.Detail, a.Count))
		return
	}
	who := a.Comm
	if a.Executable != "" {
		who += " " + a.Executable
	}
	if a.Service != "" {
		who += ", service " + a.Service
	}
	r.writeHuman(fmt.Sprintf("tailor: ANOMALY [%s] %s %s (%s): %s - %s (pid %d %s)", a.Action, a.Severity, a.Category, a.Kind, a.Detail, a.Rule, a.Pid, who))
}

func (r *reporter) writeHuman(line string) {
	if r.human != nil {
		r.writeLine(r.human, line)
	}
}

func (r *reporter) writeLine(w io.Writer, line string) {
	if _, err := io.WriteString(w, line+"\n"); err != nil {
		r.setErr(err)
	}
}

func (r *reporter) setErr(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("writing anomalies: %w", err)
	}
}

// counts returns the totals by kind and overall.
// bounds returns what the reporter kept and left out: distinct, suppressed,
// untracked.
func (r *reporter) bounds() enforce.WatchStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return enforce.WatchStats{Distinct: len(r.entries), Suppressed: r.suppressed, Untracked: r.untracked}
}

func (r *reporter) counts() (map[string]uint64, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.byKind))
	for k, v := range r.byKind {
		out[k] = v
	}
	return out, r.total
}
