package compose

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/testpriv"
)

// TestLearnReplicasMerged: the two replicas of a scaled service go into one
// recording, each followed from its start (each writes a file named after its own
// hostname, its short container ID).
func TestLearnReplicasMerged(t *testing.T) {
	testpriv.RequireRoot(t)
	if _, err := exec.LookPath(ComposeBinary); err != nil {
		testpriv.Unavailable(t, "docker-compose is not installed (make setup)")
	}
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yml")
	project := fmt.Sprintf("tailorscale%d", os.Getpid())
	compose := fmt.Sprintf(`services:
  worker:
    image: %s
    network_mode: none
    scale: 2
    command: ["sh", "-c", "touch /tmp/$$(hostname)"]
`, img)
	if err := os.WriteFile(file, []byte(compose), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	recs := filepath.Join(dir, "recordings")
	// No workload: the run ends when both replicas exited.
	ix, err := Learn(ctx, LearnOptions{Files: []string{file}, ProjectName: project, Output: recs,
		Labels: dockertest.Labels(), Stdout: &out, Stderr: &out, Progress: &out})
	if err != nil {
		t.Fatalf("learn: %v\n%s", err, out.String())
	}
	if len(ix.Services) != 1 || len(ix.Services[0].Containers) != 2 {
		t.Fatalf("index %+v, want one service with two containers", ix.Services)
	}
	rec := loadRec(t, filepath.Join(recs, "worker.json"))
	var tmp []string
	for _, f := range rec.Files {
		if filepath.Dir(f.Path) == "/tmp" && len(filepath.Base(f.Path)) == 12 {
			tmp = append(tmp, f.Path)
		}
	}
	if len(tmp) != 2 || tmp[0] == tmp[1] {
		t.Errorf("files in /tmp %v, want one per replica (%s)", tmp, out.String())
	}
	if !rec.Complete {
		t.Errorf("incomplete: %v", rec.Incomplete)
	}
}
