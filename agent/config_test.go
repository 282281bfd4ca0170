package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/internal/fail"
)

func TestParseConfigRefuses(t *testing.T) {
	for name, cfg := range map[string]string{
		"no rules":       "metrics: 127.0.0.1:1\n",
		"unknown field":  "rules:\n- image: a\n  bundle: /b\n  bundel: /c\n",
		"both sources":   "rules:\n- image: a\n  bundle: /b\n  oci: r/x:y\n",
		"no source":      "rules:\n- image: a\n",
		"matches all":    "rules:\n- bundle: /b\n",
		"not yaml":       "rules: [\n",
		"top-level typo": "rule:\n- image: a\n  bundle: /b\n",
	} {
		if _, err := ParseConfig([]byte(cfg)); !errors.Is(err, fail.ErrBadInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c, err := ParseConfig([]byte("rules:\n- image: nginx\n  labels: {app: web}\n  oci: 127.0.0.1:5000/t/web:v1\nmetrics: 127.0.0.1:9464\nmetricsWebConfig: web.yml\n"))
	if err != nil || len(c.Rules) != 1 || c.Rules[0].OCI == "" || c.Metrics != "127.0.0.1:9464" || c.MetricsWebConfig != "web.yml" {
		t.Fatalf("%+v, %v", c, err)
	}
	// The web configuration is checked (here: missing) before anything starts.
	if _, err := metricsWebConfig(c); !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "--metrics-web-config") {
		t.Errorf("missing web config: %v", err)
	}
	c.Metrics = ""
	if _, err := metricsWebConfig(c); !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "needs metrics") {
		t.Errorf("web config without metrics: %v", err)
	}
}

func TestRuleMatches(t *testing.T) {
	r := Rule{Image: "nginx", Labels: map[string]string{"app": "web"}}
	for _, c := range []struct {
		image  string
		labels map[string]string
		want   bool
	}{
		{"nginx:latest", map[string]string{"app": "web", "x": "y"}, true},
		{"nginx", map[string]string{"app": "web"}, true},
		{"nginx:1.22", map[string]string{"app": "web"}, false},
		{"nginx", map[string]string{"app": "api"}, false},
		{"nginx", nil, false},
	} {
		if got := r.matches(c.image, c.labels); got != c.want {
			t.Errorf("%s %v: %v", c.image, c.labels, got)
		}
	}
	for in, want := range map[string]string{
		"nginx": "nginx:latest", "nginx:1": "nginx:1", "127.0.0.1:5000/x": "127.0.0.1:5000/x:latest",
		"127.0.0.1:5000/x:v": "127.0.0.1:5000/x:v", "x@sha256:ab": "x@sha256:ab",
	} {
		if got := withTag(in); got != want {
			t.Errorf("withTag(%s) = %s, want %s", in, got, want)
		}
	}
}
