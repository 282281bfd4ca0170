package watch

import (
	"fmt"
	"net"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tailor-sec/tailor/enforce"
)

// MetricsWarning says when the metrics are served beyond this host ("" on a loopback
// address): they go out in plain HTTP without authentication.
func MetricsWarning(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if ok && tcp.IP.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("--metrics %s is not a loopback address: anyone who can reach it reads the anomaly counts (plain HTTP, no authentication); use 127.0.0.1:PORT", addr)
}

func metricsMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// StatsCollector exports w's running totals as the metrics tailor watch and the node
// agent serve (tailor_anomalies_total, tailor_events_lost_total,
// tailor_targets_watched).
func StatsCollector(w enforce.Watcher) prometheus.Collector { return statsCollector{w} }

// statsCollector turns the watcher's running totals into metrics at scrape time, so
// the metrics never disagree with what Stop later reports.
type statsCollector struct{ w enforce.Watcher }

var (
	anomaliesDesc = prometheus.NewDesc("tailor_anomalies_total", "Anomalies (behaviour outside the profile) seen, by kind, repeats included.", []string{"kind"}, nil)
	lostDesc      = prometheus.NewDesc("tailor_events_lost_total", "Observations the tracer could not keep.", nil, nil)
	targetsDesc   = prometheus.NewDesc("tailor_targets_watched", "Targets being watched.", nil, nil)
)

// Describe implements prometheus.Collector.
func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- anomaliesDesc
	ch <- lostDesc
	ch <- targetsDesc
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
	ch <- prometheus.MustNewConstMetric(targetsDesc, prometheus.GaugeValue, float64(s.Targets))
}
