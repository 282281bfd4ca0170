package agent

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
)

// Config is the agent's configuration file (YAML or JSON; a ConfigMap in a cluster).
//
//	rules:
//	- image: nginx:1.22                  # the image as Docker reports it (Config.Image)
//	  oci: registry.example/tailor/web:v3 # a bundle pushed with tailor push
//	- labels: {app.kubernetes.io/name: api}
//	  bundle: /etc/tailor/bundles/api     # a bundle directory
//	metrics: 127.0.0.1:9464
//	metricsWebConfig: /etc/tailor/web.yml  # TLS and basic authentication (exporter-toolkit)
type Config struct {
	// Rules map containers to bundles; the first rule a container matches wins.
	Rules []Rule `json:"rules"`
	// Metrics is the HOST:PORT of the Prometheus metrics ("" for none).
	Metrics string `json:"metrics,omitempty"`
	// MetricsWebConfig is the Prometheus web configuration file (exporter-toolkit's:
	// TLS, basic authentication) of the metrics endpoint ("" for plain HTTP).
	MetricsWebConfig string `json:"metricsWebConfig,omitempty"`
	// PlainHTTP pulls OCI bundles over HTTP (loopback registries only).
	PlainHTTP bool `json:"plainHTTP,omitempty"`
}

// Rule maps containers to one bundle.
type Rule struct {
	// Name names the rule in reports; "" means the bundle's profile name.
	Name string `json:"name,omitempty"`
	// Image, when set, must equal the container's image reference (a missing tag
	// reads as :latest on both sides).
	Image string `json:"image,omitempty"`
	// Labels, when set, must all be on the container with these values.
	Labels map[string]string `json:"labels,omitempty"`
	// Bundle is a bundle directory; OCI a bundle reference, pulled and verified at
	// start. Exactly one is set.
	Bundle string `json:"bundle,omitempty"`
	OCI    string `json:"oci,omitempty"`
}

// LoadConfig reads and checks the configuration file at path: unknown fields are
// refused (a misspelt key would otherwise silently match nothing).
func LoadConfig(path string) (*Config, error) {
	data, err := safeio.ReadFile(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%w: --config: %v", fail.ErrBadInput, err)
	}
	return ParseConfig(data)
}

// ParseConfig decodes and checks a configuration.
func ParseConfig(data []byte) (*Config, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: agent config: %v", fail.ErrBadInput, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: agent config: %v", fail.ErrBadInput, err)
	}
	if len(c.Rules) == 0 {
		return nil, fmt.Errorf("%w: agent config: no rules", fail.ErrBadInput)
	}
	for i, r := range c.Rules {
		switch {
		case (r.Bundle == "") == (r.OCI == ""):
			return nil, fmt.Errorf("%w: agent config: rule %d: give exactly one of bundle (a directory) and oci (a reference)", fail.ErrBadInput, i+1)
		case r.Image == "" && len(r.Labels) == 0:
			return nil, fmt.Errorf("%w: agent config: rule %d matches every container: give an image or labels", fail.ErrBadInput, i+1)
		}
	}
	return &c, nil
}

// metricsWebConfig checks the configuration's web configuration file, which needs
// metrics (nil when none is given).
func metricsWebConfig(c *Config) (*watch.WebConfig, error) {
	if c.MetricsWebConfig == "" {
		return nil, nil
	}
	if c.Metrics == "" {
		return nil, fmt.Errorf("%w: agent config: metricsWebConfig (--metrics-web-config) needs metrics (--metrics HOST:PORT)", fail.ErrBadInput)
	}
	return watch.LoadWebConfig(c.MetricsWebConfig)
}

// matches says whether a container with image and labels falls under r.
func (r *Rule) matches(image string, labels map[string]string) bool {
	if r.Image != "" && withTag(r.Image) != withTag(image) {
		return false
	}
	for k, v := range r.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// withTag adds :latest to a reference without a tag or digest.
func withTag(ref string) string {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case '@', ':':
			return ref
		case '/':
			return ref + ":latest"
		}
	}
	return ref + ":latest"
}
