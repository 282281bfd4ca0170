// Package report renders what a recording or bundle allows, what changed between two
// of them, and what an anomaly log shows, as one self-contained HTML page (no script,
// no request to any host), a terminal summary and JSON. It only reads: the model is a
// pure function of the inputs, so the same inputs give the same bytes.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

// Report is everything one page shows, in the order it shows it.
type Report struct {
	// Diff compares the two policy inputs when two were given.
	Diff *DiffView `json:"diff,omitempty"`
	// Policies are the single recording or bundle given (none with a diff).
	Policies []*PolicyView `json:"policies,omitempty"`
	// Anomalies has one view per anomalies file.
	Anomalies []*AnomalyView `json:"anomalies,omitempty"`
}

// input kinds
const (
	inputRecording = "recording"
	inputBundle    = "bundle"
	inputAnomalies = "anomalies"
)

// Build reads the inputs (recording files, bundle directories, anomalies files) and
// makes the report: one policy input is shown whole, two are diffed (the first is
// OLD); every anomalies file gets its own section. Any other number of policy
// inputs, or an input that is none of these, is bad input.
func Build(paths []string) (*Report, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: report needs at least one input: a recording, a bundle directory, two of them (a diff) or an anomalies file", fail.ErrBadInput)
	}
	var policies []string
	r := &Report{}
	for _, p := range paths {
		kind, data, err := classify(p)
		if err != nil {
			return nil, err
		}
		switch kind {
		case inputAnomalies:
			v, err := anomalyView(p, data)
			if err != nil {
				return nil, err
			}
			r.Anomalies = append(r.Anomalies, v)
		default:
			policies = append(policies, p)
		}
	}
	switch len(policies) {
	case 0:
	case 1:
		v, err := policyView(policies[0])
		if err != nil {
			return nil, err
		}
		r.Policies = append(r.Policies, v)
	case 2:
		d, err := diffView(policies[0], policies[1])
		if err != nil {
			return nil, err
		}
		r.Diff = d
	default:
		return nil, fmt.Errorf("%w: %d recordings or bundles given: give one (to show it) or two (OLD NEW, to diff them)", fail.ErrBadInput, len(policies))
	}
	return r, nil
}

// classify tells a bundle directory, a recording file and an anomalies file apart,
// returning the content of an anomalies file. A recording is one JSON object of kind
// tailor.recording; an anomalies file is JSON lines, one object each.
func classify(path string) (string, []byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w: %w", path, fail.ErrBadInput, err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, profiles.BundleManifestFile)); err != nil {
			return "", nil, fmt.Errorf("%s: %w: a directory without %s is not a bundle", path, fail.ErrBadInput, profiles.BundleManifestFile)
		}
		return inputBundle, nil, nil
	}
	data, err := safeio.ReadFile(path, safeio.MaxRecording)
	if err != nil {
		if errors.Is(err, fail.ErrBadInput) {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("%s: %w: %w", path, fail.ErrBadInput, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// A watch that saw nothing leaves an empty anomalies file.
		return inputAnomalies, data, nil
	}
	var head struct {
		Kind string `json:"kind"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&head); err != nil {
		return "", nil, fmt.Errorf("%s: %w: neither a recording, a bundle nor an anomalies file (JSON lines): %v", path, fail.ErrBadInput, err)
	}
	switch head.Kind {
	case profiles.RecordingKind:
		return inputRecording, nil, nil
	case profiles.BundleKind:
		return "", nil, fmt.Errorf("%s: %w: give the bundle's directory, not its manifest", path, fail.ErrBadInput)
	}
	return inputAnomalies, data, nil
}
