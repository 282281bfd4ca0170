package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
)

// WebConfig is a checked web configuration file of the Prometheus ecosystem
// (exporter-toolkit's, as node_exporter's --web.config.file reads it): TLS
// (tls_server_config) and basic authentication (basic_auth_users, bcrypt hashes) of
// the metrics endpoint.
type WebConfig struct {
	// Path is the file, absolute: exporter-toolkit reads it again on every request
	// and TLS handshake, so a certificate or a password can change without a restart.
	Path string
	// TLS and Auth say what the file turns on.
	TLS, Auth bool
}

// webConfigLimit bounds the web configuration file (certificates and keys are
// separate files, read by exporter-toolkit).
const webConfigLimit = 1 << 20

// LoadWebConfig checks the web configuration file at path as exporter-toolkit will
// use it (YAML with no unknown key, certificate and key loaded and matching, bcrypt
// hashes well formed), so a bad file is refused with one line before anything starts.
func LoadWebConfig(path string) (*WebConfig, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --metrics-web-config: %v", fail.ErrBadInput, err)
	}
	data, err := safeio.ReadFile(abs, webConfigLimit)
	if err != nil {
		return nil, fmt.Errorf("%w: --metrics-web-config: %v", fail.ErrBadInput, err)
	}
	if err := web.Validate(abs); err != nil {
		return nil, fmt.Errorf("%w: --metrics-web-config %s: %s", fail.ErrBadInput, path, oneLine(err.Error()))
	}
	var c web.Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%w: --metrics-web-config %s: %s", fail.ErrBadInput, path, oneLine(err.Error()))
	}
	return &WebConfig{Path: abs, TLS: c.TLSConfig.IsEnabled(), Auth: len(c.Users) > 0}, nil
}

// oneLine joins the lines of a library's message (yaml lists each error on its own).
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " / ")), " ")
}

// MetricsWarning says what is wrong with serving the metrics at addr with wc (nil
// for no web configuration): "" on a loopback address, or beyond it with both TLS
// and basic authentication; otherwise the counts reach anyone on the network, and
// the warning names what is missing.
func MetricsWarning(addr net.Addr, wc *WebConfig) string {
	tcp, ok := addr.(*net.TCPAddr)
	if ok && tcp.IP.IsLoopback() {
		return ""
	}
	var missing []string
	if wc == nil || !wc.TLS {
		missing = append(missing, "plain HTTP")
	}
	if wc == nil || !wc.Auth {
		missing = append(missing, "no authentication")
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("--metrics %s is not a loopback address: anyone who can reach it reads the anomaly counts (%s); use 127.0.0.1:PORT, or --metrics-web-config with tls_server_config and basic_auth_users", addr, strings.Join(missing, ", "))
}

// MetricsServer serves a registry at /metrics.
type MetricsServer struct {
	srv  *http.Server
	addr net.Addr
	tls  bool
	done chan struct{}
}

// ServeMetrics listens on addr and serves reg at /metrics through exporter-toolkit's
// web package: TLS and basic authentication as wc says (nil: plain HTTP). The
// listener is open when it returns, so the address can be reported and scraped at
// once. A warning about the address (MetricsWarning) goes to logger.
func ServeMetrics(addr string, wc *WebConfig, reg *prometheus.Registry, logger *slog.Logger) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: --metrics %s: %v", fail.ErrBadInput, addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &MetricsServer{
		// A client's failed handshake is its own business: not a line on tailor's
		// stderr per attempt.
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)},
		addr: ln.Addr(),
		tls:  wc != nil && wc.TLS,
		done: make(chan struct{}),
	}
	path := ""
	if wc != nil {
		path = wc.Path
	}
	// exporter-toolkit says at Info what it serves; tailor says it once itself.
	quiet := slog.New(minLevel{logger.Handler(), slog.LevelWarn})
	go func() {
		defer close(m.done)
		err := web.Serve(ln, m.srv, &web.FlagConfig{WebConfigFile: &path}, quiet)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics server stopped", "error", err)
		}
	}()
	if w := MetricsWarning(ln.Addr(), wc); w != "" {
		logger.Warn("metrics exposed", "warning", w)
	}
	return m, nil
}

// Addr is the address the metrics are served at.
func (m *MetricsServer) Addr() net.Addr { return m.addr }

// URL is the metrics endpoint, https when TLS is on.
func (m *MetricsServer) URL() string {
	scheme := "http"
	if m.tls {
		scheme = "https"
	}
	return scheme + "://" + m.addr.String() + "/metrics"
}

// Close stops serving and waits for the server to end.
func (m *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if err != nil {
		err = m.srv.Close()
	}
	<-m.done
	return err
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// StatsCollector exports w's running totals as the metrics tailor watch and the node
// agent serve: the counts of the anomalies file's summary record (anomalies by kind,
// distinct, suppressed, untracked, lost by counter, refused elsewhere) and the
// targets watched.
func StatsCollector(w enforce.Watcher) prometheus.Collector { return statsCollector{w} }

// statsCollector turns the watcher's running totals into metrics at scrape time, so
// the metrics never disagree with what Stop later reports.
type statsCollector struct{ w enforce.Watcher }

var (
	anomaliesDesc = prometheus.NewDesc("tailor_anomalies_total", "Anomalies (behaviour outside the profile) seen, by kind, repeats included.", []string{"kind"}, nil)
	lostDesc      = prometheus.NewDesc("tailor_events_lost_total", "Observations the tracer could not keep: anomalies may be missing.", nil, nil)
	lostByDesc    = prometheus.NewDesc("tailor_events_lost_by_counter_total", "Observations the tracer could not keep, by its loss counter (ringbufDrops, anomaliesFull...).", []string{"counter"}, nil)
	targetsDesc   = prometheus.NewDesc("tailor_targets_watched", "Targets being watched.", nil, nil)
	distinctDesc  = prometheus.NewDesc("tailor_anomalies_distinct", "Distinct anomalies kept (shown or suppressed).", nil, nil)
	suppressDesc  = prometheus.NewDesc("tailor_anomalies_suppressed_total", "Distinct anomalies counted but not reported line by line (past the shown bound).", nil, nil)
	untrackedDesc = prometheus.NewDesc("tailor_anomalies_untracked_total", "Occurrences of anomalies past the watcher's memory bound: in the totals, not counted apart.", nil, nil)
	elsewhereDesc = prometheus.NewDesc("tailor_refused_elsewhere_total", "Distinct refused operations the profile grants (file permissions or another security module refused them).", nil, nil)
)

// Describe implements prometheus.Collector.
func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- anomaliesDesc
	ch <- lostDesc
	ch <- lostByDesc
	ch <- targetsDesc
	ch <- distinctDesc
	ch <- suppressDesc
	ch <- untrackedDesc
	ch <- elsewhereDesc
}

// Collect implements prometheus.Collector.
func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.Stats()
	kinds := make([]string, 0, len(s.Anomalies))
	for k := range s.Anomalies {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		ch <- prometheus.MustNewConstMetric(anomaliesDesc, prometheus.CounterValue, float64(s.Anomalies[k]), k)
	}
	ch <- prometheus.MustNewConstMetric(lostDesc, prometheus.CounterValue, float64(s.Lost))
	for _, k := range slices.Sorted(maps.Keys(s.LostBy)) {
		ch <- prometheus.MustNewConstMetric(lostByDesc, prometheus.CounterValue, float64(s.LostBy[k]), k)
	}
	ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(s.Targets))
	ch <- prometheus.MustNewConstMetric(distinctDesc, prometheus.GaugeValue, float64(s.Distinct))
	ch <- prometheus.MustNewConstMetric(suppressDesc, prometheus.CounterValue, float64(s.Suppressed))
	ch <- prometheus.MustNewConstMetric(untrackedDesc, prometheus.CounterValue, float64(s.Untracked))
	ch <- prometheus.MustNewConstMetric(elsewhereDesc, prometheus.CounterValue, float64(s.RefusedElsewhere))
}
