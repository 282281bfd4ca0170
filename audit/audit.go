// Package audit checks a container's run configuration against the container section
// of the CIS Docker Benchmark (1.6, section 5) and the runtime-security guides tailor
// follows, and, given a recording, against what the app was seen to need. Checking is
// a pure function of the configuration and the recording; the CLI gathers them from
// the Docker daemon or from files.
package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/tailor-sec/tailor/profiles"
)

// Severity ranks a finding. The zero value is Info.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText spells the severity as a word in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's word.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// ParseSeverity reads info, low, medium, high or critical, in any case.
func ParseSeverity(word string) (Severity, error) {
	i := slices.Index(severityNames, strings.ToLower(word))
	if i < 0 {
		return 0, fmt.Errorf("unknown severity %q (one of %s)", word, strings.Join(severityNames, ", "))
	}
	return Severity(i), nil
}

// Finding is one problem with a container's configuration.
type Finding struct {
	// Check is a short stable name (privileged, host-network, secret-env...).
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	// CIS is the CIS Docker Benchmark 1.6 recommendation, when one covers the check.
	CIS string `json:"cis,omitempty"`
	// Title says what is wrong, Evidence what in the configuration (or the recording)
	// shows it. Secret values never appear in either.
	Title    string `json:"title"`
	Evidence string `json:"evidence"`
	// Fix is the docker run flag (or change) that removes the finding.
	Fix string `json:"fix"`
}

// Subject is a container configuration to check.
type Subject struct {
	// Name, ID and Image identify it in the report.
	Name  string `json:"name,omitempty"`
	ID    string `json:"id,omitempty"`
	Image string `json:"image,omitempty"`
	// Source says where the configuration came from: "docker" (a daemon's inspect),
	// "inspect-file" or "recording".
	Source     string                `json:"source"`
	Config     *container.Config     `json:"-"`
	HostConfig *container.HostConfig `json:"-"`
	// AppArmorProfile is the profile the daemon applied; empty when unknown (a
	// recording) or when the host has no AppArmor.
	AppArmorProfile string `json:"-"`
}

// FromInspect makes a Subject of a daemon's inspect response.
func FromInspect(info container.InspectResponse, source string) (Subject, error) {
	if info.ContainerJSONBase == nil || info.Config == nil || info.HostConfig == nil {
		return Subject{}, fmt.Errorf("%w: the container description lacks Config or HostConfig", profiles.ErrBadInput)
	}
	return Subject{
		Name: strings.TrimPrefix(info.Name, "/"), ID: info.ID, Image: info.Config.Image,
		Source: source, Config: info.Config, HostConfig: info.HostConfig,
		AppArmorProfile: info.AppArmorProfile,
	}, nil
}

// FromRecording makes a Subject of the configuration a container recording kept.
func FromRecording(rec *profiles.Recording) (Subject, error) {
	c := rec.Target.Container
	if rec.Target.Kind != "container" || c == nil || c.Config == nil {
		return Subject{}, fmt.Errorf("%w: the recording is not of a container, or kept no configuration", profiles.ErrBadInput)
	}
	b, err := json.Marshal(c.Config)
	if err != nil {
		return Subject{}, fmt.Errorf("encoding the recorded configuration: %w", err)
	}
	var cfg struct {
		Config     *container.Config
		HostConfig *container.HostConfig
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Subject{}, fmt.Errorf("%w: the recorded configuration: %v", profiles.ErrBadInput, err)
	}
	if cfg.Config == nil || cfg.HostConfig == nil {
		return Subject{}, fmt.Errorf("%w: the recorded configuration lacks Config or HostConfig", profiles.ErrBadInput)
	}
	return Subject{Name: c.Name, ID: c.ID, Image: c.Image, Source: "recording", Config: cfg.Config, HostConfig: cfg.HostConfig}, nil
}

// Report is the findings of one subject, most severe first.
type Report struct {
	Subject
	Findings []Finding `json:"findings"`
}

// Worst is the highest severity among the findings, and false when there are none.
func (r Report) Worst() (Severity, bool) {
	if len(r.Findings) == 0 {
		return 0, false
	}
	return r.Findings[0].Severity, true
}

// Audit checks s, and with rec (nil for none) what the app needed. The findings are
// sorted by severity (highest first), then check name and evidence.
func Audit(s Subject, rec *profiles.Recording) Report {
	var fs []Finding
	for _, check := range checks {
		fs = append(fs, check(s, rec)...)
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		if c := strings.Compare(a.Check, b.Check); c != 0 {
			return c
		}
		return strings.Compare(a.Evidence, b.Evidence)
	})
	if fs == nil {
		fs = []Finding{}
	}
	return Report{Subject: s, Findings: fs}
}
