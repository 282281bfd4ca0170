package compose

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/diff"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadStartOrder parses with compose-go: depends_on, and network_mode service:
// (which compose-go turns into a dependency), order the services.
func TestLoadStartOrder(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, filepath.Join(dir, "compose.yml"), `services:
  worker:
    image: x
    depends_on: [db, cache]
  web:
    image: x
    network_mode: "service:db"
    depends_on:
      cache:
        condition: service_healthy
  db:
    image: x
  cache:
    image: x
    healthcheck:
      test: ["CMD", "true"]
`)
	if _, err := Load(context.Background(), []string{file}, "Demo"); !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("project name Demo (compose-go wants lowercase): %v", err)
	}
	p, err := Load(context.Background(), []string{file}, "demo")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, s := range p.Services {
		order = append(order, s.Name)
	}
	if want := []string{"cache", "db", "web", "worker"}; !slices.Equal(order, want) {
		t.Errorf("start order %v, want %v", order, want)
	}
	if p.Name != "demo" {
		t.Errorf("project name %q, want demo", p.Name)
	}
	web, _ := p.Service("web")
	if !slices.Equal(web.DependsOn, []string{"cache", "db"}) {
		t.Errorf("web depends on %v", web.DependsOn)
	}
	if c, _ := p.Service("cache"); !c.Healthcheck {
		t.Error("cache's healthcheck not seen")
	}
	if _, err := p.Select([]string{"nope"}); !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("unknown service: %v", err)
	}
	sel, err := p.Select([]string{"worker", "cache"})
	if err != nil || len(sel) != 2 || sel[0].Name != "cache" {
		t.Errorf("select: %v %v", sel, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	cycle := writeFile(t, filepath.Join(dir, "cycle.yml"), "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n")
	if _, err := Load(context.Background(), []string{cycle}, "p"); !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("cycle: %v", err)
	}
	if _, err := Load(context.Background(), []string{filepath.Join(dir, "missing.yml")}, "p"); !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("missing file: %v", err)
	}
	priv := writeFile(t, filepath.Join(dir, "priv.yml"), "services:\n  a: {image: x, privileged: true}\n  b: {image: x, security_opt: [\"seccomp=unconfined\"]}\n")
	p, err := Load(context.Background(), []string{priv}, "p")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Services {
		if err := learnable(s); !errors.Is(err, fail.ErrRefused) {
			t.Errorf("service %s learnable: %v", s.Name, err)
		}
	}
}

// recordingDir makes a learn --compose directory from testdata recordings.
func recordingDir(t *testing.T, services map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	ix := &Index{Kind: KindRecordings, SchemaVersion: IndexSchemaVersion, Project: "shop"}
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "recordings", services[n]))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, n+".json"), string(data))
		ix.Services = append(ix.Services, IndexService{Name: n, Path: n + ".json"})
	}
	if err := ix.save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGenerateOverride checks compose.tailor.yml against its golden file, that it is
// deterministic, and that paths in it are relative to it.
func TestGenerateOverride(t *testing.T) {
	recs := recordingDir(t, map[string]string{"web": "webserver.json", "tools": "caps.json"})
	out := filepath.Join(t.TempDir(), "tailor")
	var warn bytes.Buffer
	ix, err := Generate(GenerateOptions{Input: recs, Output: out, Version: "test", Warn: &warn, AllowIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Services) != 2 || ix.Services[1].Profile != "tailor-shop-web" {
		t.Fatalf("index %+v", ix)
	}
	for _, s := range ix.Services {
		if _, err := os.Stat(filepath.Join(out, s.Path, "seccomp.json")); err != nil {
			t.Error(err)
		}
	}
	got, err := os.ReadFile(filepath.Join(out, OverrideFile))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", OverrideFile)
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./compose -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("compose.tailor.yml differs from %s (run go test ./compose -update):\n%s", golden, got)
	}
	if strings.Contains(string(got), out) {
		t.Error("the override names an absolute path")
	}
	// Again into the same directory: byte-identical.
	if _, err := Generate(GenerateOptions{Input: recs, Output: out, Version: "test", Warn: &warn, AllowIncomplete: true}); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(out, OverrideFile))
	if !bytes.Equal(again, got) {
		t.Error("a second generate wrote a different override")
	}
	// Without AppArmor.
	noaa := filepath.Join(t.TempDir(), "noaa")
	if _, err := Generate(GenerateOptions{Input: recs, Output: noaa, Version: "test", Warn: &warn, AllowIncomplete: true, NoAppArmor: true}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(noaa, OverrideFile)); strings.Contains(string(data), "- apparmor=") {
		t.Error("--no-apparmor override names an AppArmor profile")
	}
	// A directory holding something else is refused.
	writeFile(t, filepath.Join(out, "notes.txt"), "mine")
	if _, err := Generate(GenerateOptions{Input: recs, Output: out, Version: "test", Warn: &warn, AllowIncomplete: true}); !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("foreign file in -o: %v", err)
	}
}

// TestHardenHook: what the hook returns lands in the override.
func TestHardenHook(t *testing.T) {
	recs := recordingDir(t, map[string]string{"web": "webserver.json"})
	out := filepath.Join(t.TempDir(), "tailor")
	ro, pids := true, int64(64)
	_, err := Generate(GenerateOptions{Input: recs, Output: out, Version: "test", AllowIncomplete: true, Warn: &bytes.Buffer{},
		Harden: func(string, *profiles.Recording, *profiles.Bundle) Hardening {
			return Hardening{ReadOnly: &ro, Tmpfs: []string{"/run"}, User: "1000:1000", PidsLimit: &pids}
		}})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(out, OverrideFile))
	for _, want := range []string{"read_only: true", "- /run", "user: 1000:1000", "pids_limit: 64"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("override lacks %q:\n%s", want, data)
		}
	}
}

// TestDiffPerService runs tailor diff (with the Compose extension) on two bundle
// directories: a service whose profile grew fails --fail-on-added and is named.
func TestDiffPerService(t *testing.T) {
	old := filepath.Join(t.TempDir(), "old")
	newer := filepath.Join(t.TempDir(), "new")
	for dir, api := range map[string]string{old: "shell-tree.json", newer: "caps.json"} {
		recs := recordingDir(t, map[string]string{"web": "webserver.json", "api": api})
		if _, err := Generate(GenerateOptions{Input: recs, Output: dir, Version: "test", AllowIncomplete: true, Warn: &bytes.Buffer{}}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := &cli.App{Writer: &out, ErrWriter: &out, ExitErrHandler: func(*cli.Context, error) {},
			Commands: []*cli.Command{Extend(diff.Command(), DiffExtension())}}
		err := app.Run(append([]string{"tailor", "diff"}, args...))
		return out.String(), err
	}
	out, err := run("--fail-on-added", old, newer)
	if !errors.Is(err, diff.ErrAdded) {
		t.Errorf("diff --fail-on-added: %v\n%s", err, out)
	}
	if !strings.Contains(out, "service api:\n+ ") || !strings.Contains(out, "service web:\nno difference\n") {
		t.Errorf("diff output:\n%s", out)
	}
	if out, err := run("--fail-on-added", old, old); err != nil {
		t.Errorf("same directories: %v\n%s", err, out)
	}
	// Recordings against bundles work too, per service.
	recs := recordingDir(t, map[string]string{"web": "webserver.json"})
	if out, err := run(recs, newer); err != nil || !strings.Contains(out, "service api: (new service)") {
		t.Errorf("recordings vs bundles: %v\n%s", err, out)
	}
}
