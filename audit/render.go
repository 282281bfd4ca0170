package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the reports as one table for a terminal: a row per finding, the
// container first, then severity, CIS id, check, evidence and fix.
func WriteTable(w io.Writer, reports []Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tSEVERITY\tCIS\tCHECK\tEVIDENCE\tFIX")
	for _, r := range reports {
		name := r.Name
		if name == "" && len(r.ID) >= 12 {
			name = r.ID[:12]
		}
		if len(r.Findings) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tno finding\t-\n", name)
		}
		for _, f := range r.Findings {
			cis := f.CIS
			if cis == "" {
				cis = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, strings.ToUpper(f.Severity.String()), cis, f.Check, f.Evidence, f.Fix)
		}
	}
	return tw.Flush()
}

// jsonReport is the --json document.
type jsonReport struct {
	Containers []Report `json:"containers"`
}

// WriteJSON writes the reports as one indented JSON document.
func WriteJSON(w io.Writer, reports []Report) error {
	if reports == nil {
		reports = []Report{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(jsonReport{Containers: reports})
}
