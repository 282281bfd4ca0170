// Package registrytest runs a real OCI registry for tests: Debian's docker-registry
// (distribution 2.8) on a free 127.0.0.1 port, with its storage in a temporary
// directory, stopped by pid when the test ends.
package registrytest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/internal/testpriv"
)

// Registry is a running registry.
type Registry struct {
	// Host is its HOST:PORT on 127.0.0.1.
	Host string
	// Storage is the root of its filesystem storage.
	Storage string
}

// BlobPath is the file the registry keeps the blob with digest "sha256:HEX" in.
func (r *Registry) BlobPath(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(r.Storage, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
}

// Start starts a registry for t. Without docker-registry the test is skipped, or
// fails under CI=true (make setup installs it).
func Start(t *testing.T) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		testpriv.Unavailable(t, "docker-registry not installed (Debian package docker-registry)")
	}
	// A port another process takes between the probe and the registry's bind makes
	// the registry exit: try again with another.
	var last string
	for attempt := 0; attempt < 3; attempt++ {
		r, out, ok := start(t, bin)
		if ok {
			return r
		}
		last = out
	}
	t.Fatalf("docker-registry did not start:\n%s", last)
	return nil
}

func start(t *testing.T, bin string) (*Registry, string, bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	r := &Registry{Host: "127.0.0.1:" + strconv.Itoa(port), Storage: filepath.Join(dir, "storage")}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", r.Storage, r.Host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The registry logs "listening on ADDR" once it accepts connections: wait for
	// that line, or for its exit.
	ready := make(chan bool, 1)
	var log strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			line := sc.Text()
			if !said {
				log.WriteString(line + "\n")
			}
			if !said && strings.Contains(line, "listening on "+r.Host) {
				said = true
				ready <- true
			}
		}
		if !said {
			ready <- false
		}
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	select {
	case ok := <-ready:
		if !ok {
			stop()
			<-logDone
			return nil, log.String(), false
		}
	case <-timer.C:
		stop()
		<-logDone
		t.Fatalf("docker-registry printed no 'listening on' line in 30s:\n%s", log.String())
	}
	t.Cleanup(stop)
	return r, "", true
}
