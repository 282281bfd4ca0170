package watch

import (
	"net"
	"strings"
	"testing"
)

// TestMetricsWarnsBeyondLoopback: metrics served on every interface or a
// non-loopback address get a warning; loopback ones do not.
func TestMetricsWarnsBeyondLoopback(t *testing.T) {
	for addr, warn := range map[string]bool{"0.0.0.0:0": true, "[::]:0": true, "127.0.0.1:0": false, "[::1]:0": false} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err)
			continue
		}
		got := MetricsWarning(ln.Addr())
		ln.Close()
		if (got != "") != warn || (warn && !strings.Contains(got, "not a loopback address")) {
			t.Errorf("--metrics %s: warning %q, want one: %v", addr, got, warn)
		}
	}
}
