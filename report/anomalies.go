package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tailor-sec/tailor/enforce/watch"
)

// AnomalyLine is one line of an anomalies file: an anomaly (watch.Anomaly), or the
// watcher's closing summary record (kind "summary", watch.Summary: what was
// suppressed, lost or refused by something other than the profile). Category and
// Severity are read when the watcher writes them.
type AnomalyLine struct {
	watch.Anomaly
	Category         label  `json:"category,omitempty"`
	Severity         label  `json:"severity,omitempty"`
	Suppressed       int    `json:"suppressed,omitempty"`
	Lost             uint64 `json:"lost,omitempty"`
	RefusedElsewhere uint64 `json:"refusedElsewhere,omitempty"`
}

// AnomalyView summarises one anomalies file.
type AnomalyView struct {
	Source string `json:"source"`
	Lines  int    `json:"lines"`
	// Total counts occurrences (each distinct anomaly's last count), Distinct the
	// distinct anomalies, Blocked and Allowed the occurrences by action.
	Total    uint64 `json:"total"`
	Distinct int    `json:"distinct"`
	Blocked  uint64 `json:"blocked"`
	Allowed  uint64 `json:"allowed"`
	// Suppressed counts the distinct anomalies the watcher counted but did not
	// write; Lost the observations it lost (anomalies may be missing).
	Suppressed int    `json:"suppressed"`
	Lost       uint64 `json:"lost"`
	// RefusedElsewhere counts refusals the profile granted (file permissions or
	// another module refused them): not anomalies.
	RefusedElsewhere uint64 `json:"refusedElsewhere"`
	// Unknown counts lines that are neither anomalies nor lines about the report.
	Unknown     int        `json:"unknown"`
	Start       time.Time  `json:"start"`
	End         time.Time  `json:"end"`
	ByKind      []Count    `json:"byKind"`
	ByCategory  []Count    `json:"byCategory"`
	BySeverity  []Count    `json:"bySeverity"`
	TopPrograms []Count    `json:"topPrograms"`
	TopRules    []Count    `json:"topRules"`
	Anomalies   []Distinct `json:"anomalies"`
	Timeline    *Timeline  `json:"-"`
}

// Count is how many distinct anomalies and occurrences share one value.
type Count struct {
	Name        string `json:"name"`
	Distinct    int    `json:"distinct"`
	Occurrences uint64 `json:"occurrences"`
}

// Distinct is one distinct anomaly with its last count and when it was seen.
type Distinct struct {
	Kind     string    `json:"kind"`
	Category string    `json:"category,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Target   string    `json:"target"`
	Program  string    `json:"program"`
	Detail   string    `json:"detail"`
	Rule     string    `json:"rule"`
	Action   string    `json:"action"`
	Count    uint64    `json:"count"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	// lines are the lines' times and whether each repeats an earlier one, for the
	// timeline.
	lines []lineMark
	// counts holds, per watcher entry with this key, its last count: a line that is
	// no repeat starts an entry.
	counts []uint64
}

type lineMark struct {
	at     time.Time
	repeat bool
}

// topN bounds the top programs and rules.
const topN = 10

func anomalyView(path string, data []byte) (*AnomalyView, error) {
	v := &AnomalyView{Source: path}
	byKey := map[string]*Distinct{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		v.Lines++
		var l AnomalyLine
		if err := json.Unmarshal(line, &l); err != nil {
			return nil, errBad("%s line %d: not an anomaly line (JSON lines as `tailor enforce --anomalies` and `tailor watch` write them): %v", path, n, err)
		}
		switch {
		case l.Kind == "summary":
			v.Suppressed = max(v.Suppressed, l.Suppressed)
			v.Lost = max(v.Lost, l.Lost)
			v.RefusedElsewhere = max(v.RefusedElsewhere, l.RefusedElsewhere)
		case l.Kind == "" || l.Detail == "" && l.Rule == "":
			v.Unknown++
			continue
		default:
			prog := cmp.Or(l.Executable, l.Comm)
			key := strings.Join([]string{l.Kind, l.Target, l.Container, l.Detail, l.Rule, l.Action}, "\x00")
			d := byKey[key]
			if d == nil {
				d = &Distinct{Kind: l.Kind, Target: cmp.Or(l.Container, l.Target), Detail: l.Detail, Rule: l.Rule, Action: l.Action, First: l.Time}
				byKey[key] = d
				order = append(order, key)
			}
			d.Program = cmp.Or(d.Program, prog)
			d.Category = cmp.Or(string(l.Category), d.Category)
			d.Severity = cmp.Or(string(l.Severity), d.Severity)
			if !l.Repeat || len(d.counts) == 0 {
				d.counts = append(d.counts, 0)
			}
			last := &d.counts[len(d.counts)-1]
			*last = max(*last, l.Count, 1)
			d.Count = 0
			for _, c := range d.counts {
				d.Count += c
			}
			d.Last = l.Time
			d.lines = append(d.lines, lineMark{l.Time, l.Repeat})
		}
		if !l.Time.IsZero() {
			if v.Start.IsZero() || l.Time.Before(v.Start) {
				v.Start = l.Time
			}
			if l.Time.After(v.End) {
				v.End = l.Time
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errBad("%s: %v", path, err)
	}
	kinds, cats, sevs, progs, rules := counter{}, counter{}, counter{}, counter{}, counter{}
	for _, k := range order {
		d := byKey[k]
		v.Anomalies = append(v.Anomalies, *d)
		v.Total += d.Count
		if d.Action == "blocked" {
			v.Blocked += d.Count
		} else {
			v.Allowed += d.Count
		}
		kinds.add(d.Kind, d.Count)
		if d.Category != "" {
			cats.add(d.Category, d.Count)
		}
		if d.Severity != "" {
			sevs.add(d.Severity, d.Count)
		}
		progs.add(cmp.Or(d.Program, "(exited)"), d.Count)
		rules.add(d.Rule, d.Count)
	}
	v.Distinct = len(v.Anomalies)
	v.Anomalies = nonNil(v.Anomalies)
	slices.SortStableFunc(v.Anomalies, func(a, b Distinct) int { return cmp.Compare(b.Count, a.Count) })
	v.ByKind, v.ByCategory, v.BySeverity = kinds.sorted(0), cats.sorted(0), sevs.sorted(0)
	slices.SortStableFunc(v.BySeverity, func(a, b Count) int { return cmp.Compare(severityRank(a.Name), severityRank(b.Name)) })
	v.TopPrograms, v.TopRules = progs.sorted(topN), rules.sorted(topN)
	v.Timeline = timeline(v)
	return v, nil
}

// label is a category or severity: a string, or a number shown as one, so a watcher
// that grades severity by number is still read.
type label string

func (l *label) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*l = label(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("a category or severity is a string or a number, not %s", data)
	}
	*l = label(n.String())
	return nil
}

type counter map[string]*Count

func (c counter) add(name string, n uint64) {
	if c[name] == nil {
		c[name] = &Count{Name: name}
	}
	c[name].Distinct++
	c[name].Occurrences += n
}

// sorted returns the counts, most occurrences first, at most limit (0: all).
func (c counter) sorted(limit int) []Count {
	out := []Count{}
	for _, v := range c {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Occurrences, a.Occurrences), cmp.Compare(b.Distinct, a.Distinct), cmp.Compare(a.Name, b.Name))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Timeline is an SVG plot of the anomaly lines over time, one row per kind: a filled
// dot for an anomaly's first line, a ring for a repeat, the radius growing with the
// count.
type Timeline struct {
	Width, Height int
	PlotLeft      int
	PlotRight     int
	AxisY         int
	Rows          []TimelineRow
	Ticks         []TimelineTick
}

// TimelineRow is one kind's row.
type TimelineRow struct {
	Label string
	Y     int
	Dots  []TimelineDot
}

// TimelineDot is one line of the file.
type TimelineDot struct {
	X, R   int
	Repeat bool
	// Colour is red for a blocked anomaly, amber for an allowed one.
	Colour string
	Title  string
	// Lines counts the lines the dot stands for: lines that fall on the same pixel
	// are one dot, so a night of anomalies stays a light page.
	Lines int
}

// mergeDots makes the dots of one row that share a pixel, a kind of mark and a
// colour one dot, the largest, whose title says how many lines it stands for.
func mergeDots(dots []TimelineDot) []TimelineDot {
	type key struct {
		x      int
		repeat bool
		colour string
	}
	at := map[key]int{}
	var out []TimelineDot
	for _, d := range dots {
		k := key{d.X, d.Repeat, d.Colour}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, d)
			continue
		}
		m := &out[i]
		m.Lines += d.Lines
		if d.R > m.R {
			m.R, m.Title = d.R, d.Title
		}
	}
	for i := range out {
		if out[i].Lines > 1 {
			out[i].Title += fmt.Sprintf(" (one of %d lines at this point)", out[i].Lines)
		}
	}
	slices.SortStableFunc(out, func(a, b TimelineDot) int { return cmp.Compare(a.X, b.X) })
	return out
}

// TimelineTick is one time label on the axis.
type TimelineTick struct {
	X     int
	Label string
}

const (
	tlWidth  = 960
	tlLeft   = 150
	tlRight  = 930
	tlRowH   = 34
	tlTop    = 24
	tlTicks  = 5
	tlMaxDot = 11
)

func timeline(v *AnomalyView) *Timeline {
	if len(v.Anomalies) == 0 {
		return nil
	}
	kinds := []string{}
	for _, c := range v.ByKind {
		kinds = append(kinds, c.Name)
	}
	t := &Timeline{Width: tlWidth, PlotLeft: tlLeft, PlotRight: tlRight}
	t.AxisY = tlTop + len(kinds)*tlRowH
	t.Height = t.AxisY + 36
	span := v.End.Sub(v.Start)
	x := func(at time.Time) int {
		if span <= 0 || at.IsZero() {
			return (tlLeft + tlRight) / 2
		}
		return tlLeft + int(float64(tlRight-tlLeft)*float64(at.Sub(v.Start))/float64(span))
	}
	for i, k := range kinds {
		row := TimelineRow{Label: k, Y: tlTop + i*tlRowH + tlRowH/2}
		for _, d := range v.Anomalies {
			if d.Kind != k {
				continue
			}
			r := min(tlMaxDot, 4+int(math.Log2(float64(d.Count))))
			colour := "#b54708"
			if d.Action == "blocked" {
				colour = "#b42318"
			}
			for _, l := range d.lines {
				row.Dots = append(row.Dots, TimelineDot{X: x(l.at), R: r, Repeat: l.repeat, Colour: colour, Lines: 1,
					Title: fmt.Sprintf("%s %s: %s (%s), %d times in all", l.at.UTC().Format(time.RFC3339), d.Kind, d.Detail, d.Action, d.Count)})
			}
		}
		row.Dots = mergeDots(row.Dots)
		t.Rows = append(t.Rows, row)
	}
	layout := "15:04:05"
	if span >= 24*time.Hour || v.Start.YearDay() != v.End.YearDay() {
		layout = "01-02 15:04"
	}
	for i := range tlTicks {
		at := v.Start.Add(time.Duration(float64(span) * float64(i) / float64(tlTicks-1)))
		if span <= 0 && i > 0 {
			break
		}
		t.Ticks = append(t.Ticks, TimelineTick{X: x(at), Label: at.UTC().Format(layout)})
	}
	return t
}

// severities in the order a reader looks at them; others come after, by count.
var severities = []string{"critical", "high", "medium", "low", "info"}

func severityRank(s string) int {
	if i := slices.Index(severities, strings.ToLower(s)); i >= 0 {
		return i
	}
	return len(severities)
}
