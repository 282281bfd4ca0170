package compose

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/tailor-sec/tailor/diff"
	"github.com/tailor-sec/tailor/profiles"
)

// IsDir reports whether path is a directory written by learn --compose or generate
// --compose (it holds an index.json).
func IsDir(path string) bool {
	st, err := os.Stat(filepath.Join(path, IndexFile))
	return err == nil && st.Mode().IsRegular()
}

// ServiceDiff is the difference of one service between two directories.
type ServiceDiff struct {
	Service string `json:"service"`
	// Only is "old" or "new" for a service that one side does not have.
	Only string              `json:"only,omitempty"`
	Diff profiles.PolicyDiff `json:"diff"`
}

// Diff compares two recording or bundle directories service by service (each side
// may be either kind). A service only NEW has is all added; one only OLD has, all
// removed.
func Diff(older, newer string) ([]ServiceDiff, error) {
	oldPol, err := policies(older)
	if err != nil {
		return nil, err
	}
	newPol, err := policies(newer)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range oldPol {
		names = append(names, n)
	}
	for n := range newPol {
		if _, ok := oldPol[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []ServiceDiff
	for _, n := range names {
		o, inOld := oldPol[n]
		nw, inNew := newPol[n]
		d := ServiceDiff{Service: n, Diff: profiles.Diff(o, nw)}
		switch {
		case !inOld:
			d.Only = "new"
		case !inNew:
			d.Only = "old"
		}
		out = append(out, d)
	}
	return out, nil
}

// policies loads each service's policy of a recording or bundle directory.
func policies(dir string) (map[string]profiles.Policy, error) {
	ix, err := LoadIndex(dir, KindBundles)
	if err != nil {
		if ix, err = LoadIndex(dir, KindRecordings); err != nil {
			return nil, err
		}
	}
	out := map[string]profiles.Policy{}
	for _, s := range ix.Services {
		p, err := profiles.LoadPolicy(filepath.Join(dir, s.Path))
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		out[s.Name] = p
	}
	return out, nil
}

// Added reports whether any service's NEW side allows something OLD did not.
func Added(ds []ServiceDiff) bool {
	return slices.ContainsFunc(ds, func(d ServiceDiff) bool { return !d.Diff.Added.Empty() })
}

// WriteDiff prints the differences service by service, or JSON.
func WriteDiff(w io.Writer, ds []ServiceDiff, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ds)
	}
	for _, d := range ds {
		switch d.Only {
		case "new":
			fmt.Fprintf(w, "service %s: (new service)\n", d.Service)
		case "old":
			fmt.Fprintf(w, "service %s: (removed service)\n", d.Service)
		default:
			fmt.Fprintf(w, "service %s:\n", d.Service)
		}
		diff.Write(w, d.Diff)
	}
	return nil
}
