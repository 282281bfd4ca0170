package enforce

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestAllowIncompleteIsNamed: a bundle generated from an incomplete recording runs
// only with AllowIncomplete (--allow-incomplete), and the start-up report then says
// so, naming the recording.
func TestAllowIncompleteIsNamed(t *testing.T) {
	h := privileged(t)
	dir := bundle(t, func(name string, data []byte) []byte {
		if name == "bundle.json" {
			return bytes.Replace(data, []byte(`"sources": []`), []byte(`"sources": [{"file": "app.rec.json", "target": {"kind": "command"}, "complete": false}]`), 1)
		}
		return data
	})
	removeOut(t)
	var out, log bytes.Buffer
	argv := []string{filepath.Join(workDir, "workload"), filepath.Join(workDir, "in.txt"), filepath.Join(workDir, "out", "out.txt")}
	status, err := Run(context.Background(), Options{
		Profile: dir, Argv: argv, Env: []string{"PATH=/usr/bin:/bin"}, AllowIncomplete: true,
		Stdout: &out, Stderr: &out, Log: &log, Host: &h,
	})
	if err != nil || status != 0 || out.String() != "ok\n" {
		t.Fatalf("status %d, err %v, output %q\nlog:\n%s", status, err, out.String(), log.String())
	}
	if want := "incomplete:   generated from an INCOMPLETE recording (app.rec.json), run anyway (--allow-incomplete)"; !strings.Contains(log.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, log.String())
	}
}
