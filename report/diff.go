package report

import (
	"fmt"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// Verdicts of a diff, as `tailor diff --fail-on-added` decides.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
)

// DiffView is what NEW allows that OLD did not and the reverse, per category.
type DiffView struct {
	Old string `json:"old"`
	New string `json:"new"`
	// Verdict is VerdictFail when NEW allows anything OLD did not (`tailor diff
	// --fail-on-added` exits 1), else VerdictPass.
	Verdict    string         `json:"verdict"`
	Added      int            `json:"added"`
	Removed    int            `json:"removed"`
	Categories []DiffCategory `json:"categories"`
	// Changed names the bundle files whose bytes differ.
	Changed []string            `json:"changed"`
	Diff    profiles.PolicyDiff `json:"diff"`
}

// DiffCategory is one category's added and removed items.
type DiffCategory struct {
	Name    string     `json:"name"`
	Added   []DiffItem `json:"added"`
	Removed []DiffItem `json:"removed"`
}

// DiffItem is one line of the diff; Note qualifies it (a syscall's kind).
type DiffItem struct {
	Text string `json:"text"`
	Note string `json:"note,omitempty"`
}

func diffView(oldPath, newPath string) (*DiffView, error) {
	older, err := profiles.LoadPolicy(oldPath)
	if err != nil {
		return nil, err
	}
	newer, err := profiles.LoadPolicy(newPath)
	if err != nil {
		return nil, err
	}
	d := profiles.Diff(older, newer)
	v := &DiffView{Old: oldPath, New: newPath, Verdict: VerdictPass, Diff: d, Changed: nonNil(d.Changed)}
	if !d.Added.Empty() {
		v.Verdict = VerdictFail
	}
	added, removed := diffItems(d.Added), diffItems(d.Removed)
	for _, name := range diffCategoryNames {
		c := DiffCategory{Name: name, Added: nonNil(added[name]), Removed: nonNil(removed[name])}
		v.Added += len(c.Added)
		v.Removed += len(c.Removed)
		if len(c.Added)+len(c.Removed) > 0 {
			v.Categories = append(v.Categories, c)
		}
	}
	v.Categories = nonNil(v.Categories)
	return v, nil
}

var diffCategoryNames = []string{"problems", "syscalls", "capabilities", "execs", "files", "socket families", "network"}

// diffItems lists one side of a diff by category, as `tailor diff` prints it.
func diffItems(p profiles.Policy) map[string][]DiffItem {
	out := map[string][]DiffItem{}
	add := func(cat, text, note string) { out[cat] = append(out[cat], DiffItem{Text: text, Note: note}) }
	for _, s := range p.Problems {
		add("problems", s, "")
	}
	for _, s := range p.Syscalls {
		for _, n := range s.Names {
			add("syscalls", fmt.Sprintf("%s %s", strings.ToLower(strings.TrimPrefix(s.Arch, "SCMP_ARCH_")), n), SyscallKind(n))
		}
	}
	for _, c := range p.Capabilities {
		add("capabilities", c, "")
	}
	for _, e := range p.Execs {
		add("execs", e, "")
	}
	for _, f := range p.Files {
		add("files", f.Pattern, strings.Join(f.Access, ","))
	}
	for _, f := range p.SocketFamilies {
		add("socket families", f, "")
	}
	for _, n := range p.Network {
		add("network", n, "")
	}
	return out
}
