package enforce

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/profiles"
)

// pathopsBundle builds testdata/enforce/pathops.c and generates a bundle from the
// hand-written recording of it, so the Landlock plan is generate's.
func pathopsBundle(t *testing.T) (prog, bundleDir string) {
	t.Helper()
	prog = filepath.Join(workDir, "pathops")
	if _, err := os.Stat(prog); err != nil {
		out, err := exec.Command("gcc", "-static", "-O1", "-o", prog, "../testdata/enforce/pathops.c").CombinedOutput()
		need(t, err == nil, "building the static pathops (libc6-dev with libc.a needed): "+string(out))
	}
	data, err := os.ReadFile("../testdata/enforce/pathops.rec.json")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := profiles.DecodeRecording(bytes.ReplaceAll(data, []byte("@TESTDIR@"), []byte(workDir)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate.Generate([]*profiles.Recording{rec}, generate.Options{Name: "pathops", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	bundleDir = filepath.Join(t.TempDir(), "bundle")
	if _, err := generate.Write(bundleDir, b, generate.ParserChecker()); err != nil {
		t.Fatal(err)
	}
	return prog, bundleDir
}

// Every path operation the recording shows works under enforce, three times from a
// clean state, with the output of an unconfined run; the same operations on a path
// the profile does not name are refused with EACCES, except chmod, which Landlock
// cannot restrict (the start-up report says so).
func TestPathOperations(t *testing.T) {
	h := privileged(t)
	prog, profile := pathopsBundle(t)
	ops := filepath.Join(workDir, "ops")
	for _, sub := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(ops, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := filepath.Join(ops, "d")
	in := func(name string) string { return filepath.Join(d, name) }
	ax, by := filepath.Join(ops, "a", "x"), filepath.Join(ops, "b", "y")
	script := []string{
		"mkdir:" + d, "create:" + in("f"), "write:" + in("f"), "rename:" + in("f") + ":" + in("g"),
		"link:" + in("g") + ":" + in("h"), "chmod:" + in("g"), "truncate:" + in("g"),
		"symlink:g:" + in("s"), "mkfifo:" + in("p"),
		"unlink:" + in("s"), "unlink:" + in("p"), "unlink:" + in("h"), "unlink:" + in("g"), "rmdir:" + d,
		// Across directories: refer on both.
		"create:" + ax, "write:" + ax, "rename:" + ax + ":" + by, "unlink:" + by,
	}
	unconfined, err := exec.Command(prog, script...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(unconfined), ": ok\n") != len(script) {
		t.Fatalf("unconfined run:\n%s", unconfined)
	}
	enforce := func(args ...string) (string, string) {
		t.Helper()
		var out, log bytes.Buffer
		status, err := Run(context.Background(), Options{
			Profile: profile, Argv: append([]string{prog}, args...), Env: []string{"PATH=/usr/bin:/bin"},
			Stdout: &out, Stderr: &out, Log: &log, Host: &h,
		})
		if err != nil || status != 0 {
			t.Fatalf("status %d, err %v, output:\n%s\nlog:\n%s", status, err, out.String(), log.String())
		}
		return out.String(), log.String()
	}
	for i := range 3 {
		out, log := enforce(script...)
		if out != string(unconfined) {
			t.Fatalf("replay %d under enforce:\n%s\nunconfined:\n%s\nlog:\n%s", i+1, out, unconfined, log)
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("replay %d left %s: %v", i+1, d, err)
		}
		if i == 0 {
			for _, want := range []string{
				"widened: " + ops + " gets write_file, truncate beneath it for " + in("f") + " (created then written",
				"not enforced: setattr (chmod, chown, utimes) is not enforced by Landlock",
				"widened: " + filepath.Join(ops, "b") + " gets refer beneath it for " + by + " (rename or link across directories)",
			} {
				if !strings.Contains(log, want) {
					t.Errorf("start-up report lacks %q:\n%s", want, log)
				}
			}
			t.Logf("start-up report:\n%s", log)
		}
	}

	// Outside ops/: an existing file and directory to act on.
	outside := filepath.Join(workDir, "outside")
	od := filepath.Join(outside, "d")
	if err := os.MkdirAll(filepath.Join(outside, "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(od, 0o755); err != nil {
		t.Fatal(err)
	}
	of := filepath.Join(od, "f")
	if err := os.WriteFile(of, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := enforce("mkdir:"+filepath.Join(outside, "x"), "create:"+filepath.Join(od, "n"), "write:"+of,
		"rename:"+of+":"+filepath.Join(od, "g"), "link:"+of+":"+filepath.Join(od, "h"), "chmod:"+of,
		"truncate:"+of, "symlink:f:"+filepath.Join(od, "s"), "mkfifo:"+filepath.Join(od, "p"),
		"unlink:"+of, "rmdir:"+filepath.Join(outside, "e"), "rename:"+of+":"+filepath.Join(outside, "e", "f"))
	want := "mkdir: EACCES\ncreate: EACCES\nwrite: EACCES\nrename: EACCES\nlink: EACCES\nchmod: ok\n" +
		"truncate: EACCES\nsymlink: EACCES\nmkfifo: EACCES\nunlink: EACCES\nrmdir: EACCES\nrename: EACCES\n"
	if out != want {
		t.Errorf("outside the profile:\n%s\nwant:\n%s", out, want)
	}
	if data, err := os.ReadFile(of); err != nil || string(data) != "keep\n" {
		t.Errorf("%s after the refused operations: %q, %v", of, data, err)
	}
}
