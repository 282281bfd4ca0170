package report

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the report's key facts for a terminal, the page's order.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if d := r.Diff; d != nil {
		fmt.Fprintf(&b, "diff %s -> %s\n", d.Old, d.New)
		if d.Verdict == VerdictFail {
			fmt.Fprintf(&b, "CI verdict: FAIL: NEW allows %d things OLD did not (tailor diff --fail-on-added exits 1); %d removed\n", d.Added, d.Removed)
		} else {
			fmt.Fprintf(&b, "CI verdict: PASS: NEW allows nothing OLD did not; %d removed\n", d.Removed)
		}
		for _, c := range d.Categories {
			fmt.Fprintf(&b, "%s: +%d -%d\n", c.Name, len(c.Added), len(c.Removed))
			for _, side := range []struct {
				sign  string
				items []DiffItem
			}{{"+", c.Added}, {"-", c.Removed}} {
				for _, it := range side.items {
					fmt.Fprintf(&b, "  %s %s", side.sign, it.Text)
					if it.Note != "" {
						fmt.Fprintf(&b, "  (%s)", it.Note)
					}
					b.WriteString("\n")
				}
			}
		}
		for _, f := range d.Changed {
			fmt.Fprintf(&b, "~ bundle file %s differs\n", f)
		}
	}
	for _, p := range r.Policies {
		p.writeText(&b)
	}
	for _, a := range r.Anomalies {
		a.writeText(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *PolicyView) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "%s %s (%s)\n", p.Type, p.Name, p.Source)
	if p.Target != "" {
		fmt.Fprintf(b, "target: %s\n", p.Target)
	}
	switch {
	case !p.Complete:
		fmt.Fprintf(b, "INCOMPLETE: %s", strings.Join(p.Incomplete, "; "))
		if p.LossTotal > 0 {
			fmt.Fprintf(b, "; %d observations lost", p.LossTotal)
		}
		b.WriteString("\n")
	default:
		b.WriteString("complete: nothing lost\n")
	}
	for _, pr := range p.Problems {
		fmt.Fprintf(b, "PROBLEM: %s\n", pr)
	}
	for _, m := range p.Missing {
		fmt.Fprintf(b, "not observed on the recording host: %s\n", m)
	}
	for _, a := range p.Archs {
		fmt.Fprintf(b, "syscalls %s: %d (Docker default %d), %d not in Docker's default, %d added by generalisation\n",
			a.Arch, a.Allowed, a.DockerDefault, a.NotInDocker, a.Generalised)
		for _, g := range a.Groups {
			names := make([]string, 0, len(g.Syscalls))
			for _, s := range g.Syscalls {
				n := s.Name
				if s.Rule != "" {
					n += "*"
				}
				if !s.InDocker {
					n += "!"
				}
				names = append(names, n)
			}
			fmt.Fprintf(b, "  %-19s %3d/%-3d %s\n", g.Kind, len(g.Syscalls), g.Docker, strings.Join(names, " "))
		}
		if a.Generalised > 0 || a.NotInDocker > 0 {
			b.WriteString("  (* added by generalisation, ! not allowed unconditionally by Docker's default)\n")
		}
	}
	var added []string
	for _, c := range p.Capabilities {
		if c.Added {
			added = append(added, c.Name)
		}
	}
	fmt.Fprintf(b, "capabilities: %d (Docker default %d): %s\n", p.CapsAdded, p.DockerCaps, orNone(added))
	fmt.Fprintf(b, "file rules: %d", p.FileRules)
	if p.Type == inputBundle {
		fmt.Fprintf(b, ", %d generalised, %d widened by Landlock", p.GeneralisedPaths, p.Widened)
	}
	b.WriteString("\n")
	writeWidened(b, p.Files)
	fmt.Fprintf(b, "execs: %s\n", orNone(p.Execs))
	fmt.Fprintf(b, "socket families: %s\n", orNone(p.SocketFamilies))
	fmt.Fprintf(b, "network: %s\n", orNone(p.Network))
	if len(p.Failed) > 0 {
		fmt.Fprintf(b, "failed attempts learned: %d\n", len(p.Failed))
	}
	if p.Type == inputBundle {
		fmt.Fprintf(b, "hardening: %s\n", orNone(p.Hardening))
	}
	for _, d := range p.Denied {
		fmt.Fprintf(b, "WARNING: %s\n", d)
	}
}

// writeWidened lists the widened rules of the tree, depth first.
func writeWidened(b *strings.Builder, n *FileNode) {
	if n == nil {
		return
	}
	if n.Rule != nil {
		for _, w := range n.Rule.Widened {
			fmt.Fprintf(b, "  widened: %s: %s beneath %s (%s)\n", n.Rule.Pattern, strings.Join(w.Access, ","), w.Path, w.Reason)
		}
	}
	for _, c := range n.Children {
		writeWidened(b, c)
	}
}

func (a *AnomalyView) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "anomalies (%s): ", a.Source)
	if a.Total == 0 {
		b.WriteString("none\n")
	} else {
		fmt.Fprintf(b, "%d (%d distinct), %d blocked, %d allowed, from %s to %s\n", a.Total, a.Distinct, a.Blocked, a.Allowed,
			a.Start.UTC().Format("2006-01-02 15:04:05"), a.End.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if a.Lost > 0 {
		fmt.Fprintf(b, "WARNING: %d observations lost: anomalies may be missing\n", a.Lost)
	}
	if a.RefusedElsewhere > 0 {
		fmt.Fprintf(b, "%d refusals were file permissions or another module, not the profile\n", a.RefusedElsewhere)
	}
	if a.Suppressed > 0 {
		fmt.Fprintf(b, "%d more distinct anomalies were counted but not written\n", a.Suppressed)
	}
	for _, t := range []struct {
		title string
		rows  []Count
	}{{"by kind", a.ByKind}, {"by category", a.ByCategory}, {"by severity", a.BySeverity}, {"top programs", a.TopPrograms}, {"top rules", a.TopRules}} {
		if len(t.rows) == 0 {
			continue
		}
		fmt.Fprintf(b, "%s:\n", t.title)
		for _, r := range t.rows {
			fmt.Fprintf(b, "  %6d  %s (%d distinct)\n", r.Occurrences, r.Name, r.Distinct)
		}
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
