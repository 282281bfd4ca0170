package watch

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
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
	target   uint32
	shown    bool
	reported uint64 // count on the last line written
	lastLine time.Time
}

// reporter deduplicates anomalies and bounds what it writes: each distinct anomaly
// gets one line when first seen, then at most one line per repeatEvery while its
// count grows, and a last one at the end (of its target, or of the run); past
// maxShown distinct anomalies new ones are only counted. A target looping on a
// forbidden call therefore writes a few lines, not one per call. Memory is bounded
// too: past maxShown shown and maxSuppressed suppressed anomalies, a new one keeps no
// state of its own and is only counted (untracked), so a target that makes endless
// distinct anomalies (a path per call) cannot grow a long watch's memory. The bounds
// are on the targets watched now: a target's end (endTarget) frees its anomalies'
// state and their places under the bounds, so a node agent that outlives many
// containers keeps showing the new ones' anomalies.
type reporter struct {
	mu          sync.Mutex
	json        io.Writer
	human       io.Writer
	now         func() time.Time
	repeatEvery time.Duration
	maxShown    int

	entries map[string]*entry
	order   []string
	// shown and suppressed count the entries kept now, by whether they were shown.
	shown      int
	suppressed int
	// run tallies the whole run, targets tally each target until its end.
	run     tally
	targets map[uint32]*tally
	byKind  map[string]uint64
	err     error
}

// tally counts what a reporter saw, for a summary record.
type tally struct {
	// total counts occurrences, repeats included; distinct the distinct anomalies,
	// suppressed those of them counted but never shown.
	total      uint64
	distinct   int
	suppressed int
	// untracked counts occurrences of anomalies past every bound: not shown and not
	// kept, so their repeats cannot be told from new ones.
	untracked uint64
}

// maxSuppressed bounds the anomalies kept (to count their repeats) beyond the shown.
var maxSuppressed = 4096

func newReporter(jsonOut, human io.Writer, repeatEvery time.Duration, maxShown int) *reporter {
	return &reporter{json: jsonOut, human: human, now: time.Now, repeatEvery: repeatEvery, maxShown: maxShown,
		entries: map[string]*entry{}, targets: map[uint32]*tally{}, byKind: map[string]uint64{}}
}

// observe records n more occurrences of target's anomaly with key, or, when
// cumulative, that it occurred n times in all so far (the kernel's own count). The
// key is the target's own: the same behaviour in two targets is two anomalies.
func (r *reporter) observe(target uint32, key string, a Anomaly, n uint64, cumulative bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key = strconv.FormatUint(uint64(target), 10) + "|" + key
	tt := r.targets[target]
	if tt == nil {
		tt = &tally{}
		r.targets[target] = tt
	}
	e, ok := r.entries[key]
	if !ok && r.shown >= r.maxShown && r.suppressed >= maxSuppressed {
		if cumulative {
			n = max(n, 1) // a kernel count of a key not kept: its repeats are in it
		}
		r.run.untracked += n
		tt.untracked += n
		r.byKind[a.Kind] += n
		r.run.total += n
		tt.total += n
		return
	}
	if !ok {
		e = &entry{a: a, target: target}
		r.entries[key] = e
		r.order = append(r.order, key)
		r.run.distinct++
		tt.distinct++
	}
	before := e.a.Count
	if cumulative {
		e.a.Count = max(before, n)
	} else {
		e.a.Count = before + n
	}
	delta := e.a.Count - before
	r.byKind[a.Kind] += delta
	r.run.total += delta
	tt.total += delta
	if !ok {
		if r.shown >= r.maxShown {
			if r.run.suppressed == 0 {
				r.writeHuman(fmt.Sprintf("tailor: more than %d distinct anomalies: further new ones are counted, not shown", r.maxShown))
			}
			r.suppressed++
			r.run.suppressed++
			tt.suppressed++
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
// was killed); and the closing record of one target that stops being watched
// (Watcher.Unwatch: a node agent's container that stopped), written always, with its
// Target and Container.
type Summary struct {
	Time time.Time `json:"time"`
	// Kind is "summary".
	Kind string `json:"kind"`
	// Target, Service and Container name the target a target's summary closes; empty
	// in the run's.
	Target    string `json:"target,omitempty"`
	Service   string `json:"service,omitempty"`
	Container string `json:"container,omitempty"`
	// Anomalies counts every occurrence, repeats included; Distinct the distinct ones.
	Anomalies uint64 `json:"anomalies"`
	Distinct  int    `json:"distinct"`
	// Suppressed counts distinct anomalies counted but not shown (past MaxShown).
	Suppressed int `json:"suppressed"`
	// Untracked counts occurrences of anomalies past every bound of tailor's memory:
	// in the totals, neither shown nor counted apart.
	Untracked uint64 `json:"untracked,omitempty"`
	// Lost counts observations the tracer could not deliver (full ring buffer or
	// maps, unreadable arguments, decode errors, events of a target that had ended):
	// anomalies may be missing. A target's summary counts those lost, by any target,
	// while it was watched.
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
	if r.run.suppressed > 0 {
		msg := fmt.Sprintf("tailor: %d more distinct anomalies were counted but not shown", r.run.suppressed)
		if r.run.untracked > 0 {
			msg += fmt.Sprintf(", and %d more occurrences of anomalies past tailor's memory bound (%d kept)", r.run.untracked, r.maxShown+maxSuppressed)
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
		r.writeSummary(Summary{Anomalies: r.run.total, Distinct: r.run.distinct,
			Suppressed: r.run.suppressed, Untracked: r.run.untracked, Lost: f.lost, LostBy: f.lostBy, RefusedElsewhere: f.refusedElsewhere})
	}
	if r.run.total > 0 {
		r.writeHuman(fmt.Sprintf("tailor: %d anomalies (%d distinct)", r.run.total, r.run.distinct))
	}
}

// endTarget closes target: the last counts of its anomalies, then its summary record
// (sum names the target and carries what the watcher knows besides the anomalies),
// always. Its anomalies' state goes, and with it their places under the bounds.
func (r *reporter) endTarget(target uint32, sum Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.order[:0]
	for _, k := range r.order {
		e := r.entries[k]
		if e.target != target {
			kept = append(kept, k)
			continue
		}
		if e.shown && e.a.Count > e.reported {
			r.write(e, true)
		}
		if e.shown {
			r.shown--
		} else {
			r.suppressed--
		}
		delete(r.entries, k)
	}
	clear(r.order[len(kept):])
	r.order = kept
	tt := r.targets[target]
	if tt == nil {
		tt = &tally{}
	}
	delete(r.targets, target)
	sum.Anomalies, sum.Distinct, sum.Suppressed, sum.Untracked = tt.total, tt.distinct, tt.suppressed, tt.untracked
	if r.json != nil {
		r.writeSummary(sum)
	}
	if tt.total > 0 || sum.Lost > 0 {
		who := sum.Target
		if sum.Container != "" {
			who += ", container " + sum.Container
		}
		r.writeHuman(fmt.Sprintf("tailor: %s no longer watched: %d anomalies (%d distinct, %d not shown), %d observations lost meanwhile", who, tt.total, tt.distinct, tt.suppressed, sum.Lost))
	}
}

func (r *reporter) writeSummary(s Summary) {
	s.Time, s.Kind = r.now(), "summary"
	line, err := json.Marshal(s)
	if err != nil {
		r.setErr(err)
		return
	}
	r.writeLine(r.json, string(line))
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

// bounds returns what the reporter kept and left out: distinct, suppressed,
// untracked.
func (r *reporter) bounds() enforce.WatchStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return enforce.WatchStats{Distinct: r.run.distinct, Suppressed: r.run.suppressed, Untracked: r.run.untracked}
}

// counts returns the totals by kind and overall.
func (r *reporter) counts() (map[string]uint64, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.byKind))
	for k, v := range r.byKind {
		out[k] = v
	}
	return out, r.run.total
}
