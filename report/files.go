package report

import (
	"slices"
	"strings"
)

// FileRuleView is one file rule (or, for a recording, one recorded path).
type FileRuleView struct {
	Pattern string   `json:"pattern"`
	Access  []string `json:"access"`
	// Generalised names the rule that made the pattern wider than the recorded
	// paths, Reason says why, From lists those paths.
	Generalised string   `json:"generalised,omitempty"`
	Reason      string   `json:"reason,omitempty"`
	From        []string `json:"from,omitempty"`
	// Widened are the Landlock grants beyond this rule.
	Widened []Widening `json:"widened,omitempty"`
}

// Widening is a Landlock rule that grants Access on everything beneath Path for a
// file rule, and why.
type Widening struct {
	Path   string   `json:"path"`
	Access []string `json:"access"`
	Reason string   `json:"reason"`
}

// FileNode is a directory of the file tree (or a leaf): Name is one or more path
// components (a chain of directories with one child each is one node), Rule the rule
// whose pattern ends here, Rules the number of rules at and beneath it, Widened those
// of them Landlock widens.
type FileNode struct {
	Name     string        `json:"name"`
	Path     string        `json:"path"`
	Rule     *FileRuleView `json:"rule,omitempty"`
	Rules    int           `json:"rules"`
	Widened  int           `json:"widened"`
	Children []*FileNode   `json:"children,omitempty"`
	// Open says whether the page shows the directory unfolded: small ones and those
	// holding a widened rule.
	Open bool `json:"-"`
}

// openRules is the largest directory the page shows unfolded.
const openRules = 12

// fileTree arranges rules by path component, children sorted by name.
func fileTree(rules []*FileRuleView) *FileNode {
	root := &FileNode{Name: "/", Path: "/"}
	for _, r := range rules {
		n := root
		if r.Pattern != "/" {
			for _, c := range strings.Split(strings.TrimPrefix(r.Pattern, "/"), "/") {
				n = n.child(c)
			}
		}
		n.Rule = r
	}
	root.finish()
	root.Open = true
	return root
}

func (n *FileNode) child(name string) *FileNode {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	c := &FileNode{Name: name, Path: strings.TrimSuffix(n.Path, "/") + "/" + name}
	n.Children = append(n.Children, c)
	return c
}

// finish sorts, counts and joins single-child chains without a rule of their own.
func (n *FileNode) finish() {
	slices.SortFunc(n.Children, func(a, b *FileNode) int { return strings.Compare(a.Name, b.Name) })
	n.Rules, n.Widened = 0, 0
	if n.Rule != nil {
		n.Rules = 1
		if len(n.Rule.Widened) > 0 {
			n.Widened = 1
		}
	}
	for i, c := range n.Children {
		for c.Rule == nil && len(c.Children) == 1 {
			g := c.Children[0]
			g.Name = c.Name + "/" + g.Name
			c = g
		}
		n.Children[i] = c
		c.finish()
		n.Rules += c.Rules
		n.Widened += c.Widened
	}
	n.Open = n.Rules <= openRules || n.Widened > 0
}
