package watch

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/tailor-sec/tailor/internal/fail"
)

// TestMetricsWarnsBeyondLoopback: metrics served on every interface or a
// non-loopback address get a warning naming what is missing; loopback ones, and
// any address with both TLS and basic authentication, do not.
func TestMetricsWarnsBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		addr string
		wc   *WebConfig
		want string // "" for no warning
	}{
		{"0.0.0.0:0", nil, "plain HTTP, no authentication"},
		{"[::]:0", nil, "plain HTTP, no authentication"},
		{"0.0.0.0:0", &WebConfig{TLS: true}, "(no authentication)"},
		{"0.0.0.0:0", &WebConfig{Auth: true}, "(plain HTTP)"},
		{"0.0.0.0:0", &WebConfig{TLS: true, Auth: true}, ""},
		{"127.0.0.1:0", nil, ""},
		{"[::1]:0", nil, ""},
	} {
		ln, err := net.Listen("tcp", c.addr)
		if err != nil {
			t.Logf("%s: %v", c.addr, err)
			continue
		}
		got := MetricsWarning(ln.Addr(), c.wc)
		ln.Close()
		if (got != "") != (c.want != "") || !strings.Contains(got, c.want) || (c.want != "" && !strings.Contains(got, "not a loopback address")) {
			t.Errorf("--metrics %s with %+v: warning %q, want %q", c.addr, c.wc, got, c.want)
		}
	}
}

// selfSigned writes a new ECDSA key and a self-signed certificate for 127.0.0.1
// into dir and returns the certificate pool that trusts it.
func selfSigned(t *testing.T, dir, name string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tailor-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMetricsTLSAndBasicAuth: with a web configuration of TLS (a self-signed
// certificate made here) and basic authentication, the metrics are scraped over
// HTTPS with the right password; a wrong or missing password gets 401, plain HTTP
// and a client that does not trust the certificate get no metrics.
func TestMetricsTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir, "server")
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Relative certificate paths are relative to the configuration file, as in
	// every Prometheus exporter.
	cfg := writeFile(t, filepath.Join(dir, "web.yml"), "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prom: "+string(hash)+"\n")
	wc, err := LoadWebConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !wc.TLS || !wc.Auth {
		t.Fatalf("web config %+v: want TLS and Auth", wc)
	}

	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tailor_test_scraped_total", Help: "test"})
	c.Add(3)
	reg.MustRegister(c)
	var logs bytes.Buffer
	srv, err := ServeMetrics("127.0.0.1:0", wc, reg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %q, want https on 127.0.0.1", srv.URL())
	}
	if logs.Len() != 0 {
		t.Errorf("serving on loopback logged:\n%s", logs.String())
	}

	get := func(client *http.Client, url, user, pass string) (int, string, error) {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	code, body, err := get(trusting, srv.URL(), "prom", "s3cret")
	if err != nil || code != 200 || !strings.Contains(body, "tailor_test_scraped_total 3") {
		t.Errorf("scrape over TLS with the right password: %d %v\n%s", code, err, body)
	}
	for _, who := range [][2]string{{"prom", "wrong"}, {"nobody", "s3cret"}, {"", ""}} {
		code, body, err := get(trusting, srv.URL(), who[0], who[1])
		if err != nil || code != http.StatusUnauthorized || strings.Contains(body, "tailor_test") {
			t.Errorf("scrape as %q/%q: %d %v, want 401 without metrics\n%s", who[0], who[1], code, err, body)
		}
	}
	// Plain HTTP to the TLS port: Go's TLS server answers 400, never the metrics.
	plain := "http://" + srv.Addr().String() + "/metrics"
	code, body, err = get(&http.Client{Timeout: 10 * time.Second}, plain, "prom", "s3cret")
	if err != nil || code != http.StatusBadRequest || strings.Contains(body, "tailor_test") {
		t.Errorf("plain HTTP scrape of the TLS endpoint: %d\n%s", code, body)
	}
	// A client that does not trust the certificate fails the handshake.
	if _, _, err := get(&http.Client{Timeout: 10 * time.Second}, srv.URL(), "prom", "s3cret"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("scrape without trusting the certificate: err %v, want a certificate error", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second); err == nil {
		t.Error("metrics port still open after Close")
	}
}

// TestBadWebConfig: each bad web configuration file is refused by LoadWebConfig
// with one line and fail.ErrBadInput (exit 2).
func TestBadWebConfig(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir, "a")
	selfSigned(t, dir, "b")
	p := func(name, content string) string { return writeFile(t, filepath.Join(dir, name), content) }
	for _, c := range []struct{ path, want string }{
		{p("unknown.yml", "tls_config:\n  cert_file: a.crt\n"), "field tls_config not found"},
		{p("nocert.yml", "tls_server_config:\n  cert_file: missing.crt\n  key_file: a.key\n"), "missing.crt"},
		{p("nokey.yml", "tls_server_config:\n  cert_file: a.crt\n"), "missing one of key or key_file"},
		{p("mismatch.yml", "tls_server_config:\n  cert_file: a.crt\n  key_file: b.key\n"), "private key does not match public key"},
		{p("badhash.yml", "basic_auth_users:\n  prom: plaintext\n"), "hash"},
		{p("notyaml.yml", "tls_server_config: [\n"), "yaml"},
		{filepath.Join(dir, "none.yml"), "no such file"},
		{dir, "directory"},
		{"/dev/zero", "not a regular file"},
	} {
		wc, err := LoadWebConfig(c.path)
		if err == nil || !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %+v, %v; want one line of bad input with %q", filepath.Base(c.path), wc, err, c.want)
		}
	}
	// Without TLS nor users the file is valid and changes nothing.
	wc, err := LoadWebConfig(p("empty.yml", "http_server_config:\n  http2: false\n"))
	if err != nil || wc.TLS || wc.Auth {
		t.Errorf("empty web config: %+v, %v", wc, err)
	}
}

// TestMetricsMatchSummary: the metrics carry the counts of the anomalies file's
// closing summary record, after suppression and loss.
func TestMetricsMatchSummary(t *testing.T) {
	var js bytes.Buffer
	w := New(Options{JSON: &js, MaxShown: 2})
	for i := 0; i < 5; i++ {
		w.rep.observe(1, "file|/x/"+string(rune('a'+i)), Anomaly{Kind: "file"}, 2, false)
	}
	w.lost, w.lostBy = 7, map[string]uint64{"ringbufDrops": 4, "anomaliesFull": 3}
	reg := prometheus.NewRegistry()
	reg.MustRegister(StatsCollector(w))
	srv, err := ServeMetrics("127.0.0.1:0", nil, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	var sum Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Kind != "summary" {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	resp, err := http.Get(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		fmt.Sprintf(`tailor_anomalies_total{kind="file"} %d`, sum.Anomalies),
		fmt.Sprintf("tailor_anomalies_distinct %d", sum.Distinct),
		fmt.Sprintf("tailor_anomalies_suppressed_total %d", sum.Suppressed),
		fmt.Sprintf("tailor_events_lost_total %d", sum.Lost),
		fmt.Sprintf(`tailor_events_lost_by_counter_total{counter="ringbufDrops"} %d`, sum.LostBy["ringbufDrops"]),
		fmt.Sprintf(`tailor_events_lost_by_counter_total{counter="anomaliesFull"} %d`, sum.LostBy["anomaliesFull"]),
		fmt.Sprintf("tailor_refused_elsewhere_total %d", sum.RefusedElsewhere),
		fmt.Sprintf("tailor_anomalies_untracked_total %d", sum.Untracked),
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if sum.Anomalies != 10 || sum.Distinct != 5 || sum.Suppressed != 3 || sum.Lost != 7 {
		t.Errorf("summary %+v", sum)
	}
}
