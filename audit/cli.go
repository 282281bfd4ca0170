package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

// Options are what `tailor audit` checks and how it reports.
type Options struct {
	// Containers are names or IDs to inspect on the daemon; All inspects every one.
	Containers []string
	All        bool
	// Files are recordings or `docker inspect` JSON documents.
	Files []string
	// JSON selects the JSON report; FailOn, when set, makes Run return ErrFindings for
	// a finding of that severity or above.
	JSON   bool
	FailOn *Severity
	Stdout io.Writer
}

// Command returns `tailor audit`.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "check containers' run configuration against the CIS Docker Benchmark (section 5) and, with a recording, against what the app needed",
		ArgsUsage: "[RECORDING|INSPECT.json...]",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "container", Aliases: []string{"c"}, Usage: "container name or ID to inspect (repeatable)"},
			&cli.BoolFlag{Name: "all", Usage: "every container of the daemon, running or not"},
			&cli.BoolFlag{Name: "json", Usage: "JSON report instead of the table"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 10 when a finding is of this severity or above (info, low, medium, high, critical)"},
		},
		Action: func(c *cli.Context) error {
			opt := Options{Containers: c.StringSlice("container"), All: c.Bool("all"), Files: c.Args().Slice(), JSON: c.Bool("json"), Stdout: os.Stdout}
			if w := c.String("fail-on"); w != "" {
				s, err := ParseSeverity(w)
				if err != nil {
					return fmt.Errorf("%w: --fail-on: %v", fail.ErrBadInput, err)
				}
				opt.FailOn = &s
			}
			return Run(c.Context, opt)
		},
	}
}

// Run audits what opt names and writes the report. With FailOn it returns an error
// wrapping fail.ErrFindings when a finding reaches that severity.
func Run(ctx context.Context, opt Options) error {
	if len(opt.Containers) == 0 && !opt.All && len(opt.Files) == 0 {
		return fmt.Errorf("%w: nothing to audit: give --container NAME, --all, or a recording or docker inspect file", fail.ErrBadInput)
	}
	var reports []Report
	for _, f := range opt.Files {
		r, err := auditFile(f)
		if err != nil {
			return err
		}
		reports = append(reports, r...)
	}
	if len(opt.Containers) > 0 || opt.All {
		r, err := auditDaemon(ctx, opt.Containers, opt.All)
		if err != nil {
			return err
		}
		reports = append(reports, r...)
	}
	var err error
	if opt.JSON {
		err = WriteJSON(opt.Stdout, reports)
	} else {
		err = WriteTable(opt.Stdout, reports)
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if opt.FailOn != nil {
		n := 0
		for _, r := range reports {
			for _, f := range r.Findings {
				if f.Severity >= *opt.FailOn {
					n++
				}
			}
		}
		if n > 0 {
			return fmt.Errorf("%w: %d finding(s) of severity %s or above", fail.ErrFindings, n, *opt.FailOn)
		}
	}
	return nil
}

func auditDaemon(ctx context.Context, names []string, all bool) ([]Report, error) {
	dc, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	if all {
		ids, err := dc.ContainerIDs(ctx)
		if err != nil {
			return nil, err
		}
		names = append(names, ids...)
	}
	var reports []Report
	for _, n := range names {
		info, err := dc.Inspect(ctx, n)
		if err != nil {
			return nil, err
		}
		s, err := FromInspect(info, "docker")
		if err != nil {
			return nil, fmt.Errorf("container %q: %w", n, err)
		}
		reports = append(reports, Audit(s, nil))
	}
	return reports, nil
}

// auditFile audits a recording (with what it says the app needed) or the output of
// `docker inspect` (one object or an array of them).
func auditFile(path string) ([]Report, error) {
	data, err := safeio.ReadFile(path, safeio.MaxRecording)
	if err != nil {
		if errors.Is(err, safeio.ErrUnsafe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w: %w", path, fail.ErrBadInput, err)
	}
	var head struct {
		Kind string `json:"kind"`
	}
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") && json.Unmarshal(data, &head) == nil && head.Kind == profiles.RecordingKind {
		rec, err := profiles.DecodeRecording(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s, err := FromRecording(rec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return []Report{Audit(s, rec)}, nil
	}
	var infos []container.InspectResponse
	if strings.HasPrefix(trimmed, "[") {
		err = json.Unmarshal(data, &infos)
	} else {
		var one container.InspectResponse
		err = json.Unmarshal(data, &one)
		infos = append(infos, one)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: neither a tailor recording nor docker inspect output: %v", path, fail.ErrBadInput, err)
	}
	var reports []Report
	for _, info := range infos {
		s, err := FromInspect(info, "inspect-file")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		reports = append(reports, Audit(s, nil))
	}
	return reports, nil
}
