package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"strings"
)

//go:embed page.html.tmpl
var pageTemplate string

//go:embed page.css
var pageCSS string

var page = template.Must(template.New("page").Funcs(template.FuncMap{"counts": countsTable}).Parse(pageTemplate))

// countRow is one row of a counts table; Class styles a severity.
type countRow struct {
	Count
	Class string
}

func countsTable(title string, rows []Count) map[string]any {
	out := []countRow{}
	for _, r := range rows {
		c := countRow{Count: r}
		if title == "severity" {
			c.Class = "sev-" + strings.ToLower(r.Name)
		}
		out = append(out, c)
	}
	return map[string]any{"Title": title, "Rows": out}
}

// HTML renders the report as one self-contained page: the style sheet is inline, the
// timeline is inline SVG, there is no script, and the page's Content-Security-Policy
// forbids loading anything, so a browser opening it makes no request.
func (r *Report) HTML(inputs []string, version string) ([]byte, error) {
	var b bytes.Buffer
	err := page.Execute(&b, map[string]any{
		"Title":     r.Title(),
		"Inputs":    inputs,
		"Version":   version,
		"CSS":       template.CSS(pageCSS),
		"Diff":      r.Diff,
		"Policies":  r.Policies,
		"Anomalies": r.Anomalies,
	})
	if err != nil {
		return nil, fmt.Errorf("rendering the report: %w", err)
	}
	return b.Bytes(), nil
}

// Title names what the report is about.
func (r *Report) Title() string {
	var parts []string
	if r.Diff != nil {
		parts = append(parts, "diff "+r.Diff.Old+" → "+r.Diff.New)
	}
	for _, p := range r.Policies {
		parts = append(parts, p.Type+" "+p.Name)
	}
	if len(r.Anomalies) > 0 {
		parts = append(parts, "anomalies")
	}
	return strings.Join(parts, ", ")
}
