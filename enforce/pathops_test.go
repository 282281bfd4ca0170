package enforce

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/profiles"
)

// pathopsBundle builds testdata/enforce/pathops.c and generates a bundle from the
// hand-written recording of it, changed by edit when not nil, so the Landlock plan
// is generate's.
func pathopsBundle(t *testing.T, edit func(*profiles.Recording)) (prog, bundleDir string) {
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
	if edit != nil {
		edit(rec)
	}
	// Strict: the test directory's random name would otherwise become a glob, and the
	// plan would anchor every rule on /tmp; this test is about each kind's rights.
	b, err := generate.Generate([]*profiles.Recording{rec}, generate.Options{Name: "pathops", Version: "test", Strict: true})
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
	prog, profile := pathopsBundle(t, nil)
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
	enforce := func(args ...string) (string, string) { return runPathops(t, &h, profile, prog, args...) }
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
				"widened: " + ops + " gets write_file, truncate beneath it for " + in("f") + ", " + in("g") + " (created then written",
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

// runPathops runs prog under the bundle profile and returns its output and the
// start-up report; anything but a clean exit fails the test.
func runPathops(t *testing.T, h *Host, profile, prog string, args ...string) (string, string) {
	t.Helper()
	var out, log bytes.Buffer
	status, err := Run(context.Background(), Options{
		Profile: profile, Argv: append([]string{prog}, args...), Env: []string{"PATH=/usr/bin:/bin"},
		Stdout: &out, Stderr: &out, Log: &log, Host: h,
	})
	if err != nil || status != 0 {
		t.Fatalf("status %d, err %v, output:\n%s\nlog:\n%s", status, err, out.String(), log.String())
	}
	return out.String(), log.String()
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Landlock's TCP port rules (ABI 4): the learned connect and bind ports work, others
// are refused with EACCES; a target that made no TCP socket while learning gets no
// port at all.
func TestTCPPorts(t *testing.T) {
	h := privileged(t)
	need(t, h.LandlockABI >= 4, "Landlock TCP port rules need ABI 4")
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	learned, other := ports[0], ports[1]
	bindOK, bindNo := freePort(t), freePort(t)
	withTCP := func(sockType string) func(*profiles.Recording) {
		return func(r *profiles.Recording) {
			r.Syscalls[0].Names = append(r.Syscalls[0].Names, "bind", "connect", "socket")
			slices.Sort(r.Syscalls[0].Names)
			r.Network = profiles.Network{
				// A datagram socket lets seccomp allow socket(AF_INET) while the
				// recording has no TCP.
				Sockets:  []profiles.Socket{{Family: "AF_INET", Type: sockType}},
				Binds:    []profiles.Port{{Family: "AF_INET", Port: uint16(bindOK)}},
				Connects: []profiles.Peer{{Family: "AF_INET", Address: "127.0.0.1", Port: uint16(learned)}},
			}
		}
	}
	args := []string{fmt.Sprintf("tcpconnect:%d", learned), fmt.Sprintf("tcpconnect:%d", other),
		fmt.Sprintf("tcpbind:%d", bindOK), fmt.Sprintf("tcpbind:%d", bindNo)}

	prog, profile := pathopsBundle(t, withTCP("SOCK_STREAM"))
	out, log := runPathops(t, &h, profile, prog, args...)
	if want := "tcpconnect: ok\ntcpconnect: EACCES\ntcpbind: ok\ntcpbind: EACCES\n"; out != want {
		t.Errorf("learned TCP ports:\n%s\nwant:\n%s", out, want)
	}
	if want := fmt.Sprintf("landlock net: enforced: TCP bind to ports %d; connect to ports %d", bindOK, learned); !strings.Contains(log, want) {
		t.Errorf("start-up report lacks %q:\n%s", want, log)
	}

	prog, profile = pathopsBundle(t, withTCP("SOCK_DGRAM"))
	out, _ = runPathops(t, &h, profile, prog, args...)
	if want := "tcpconnect: EACCES\ntcpconnect: EACCES\ntcpbind: EACCES\ntcpbind: EACCES\n"; out != want {
		t.Errorf("no TCP learned:\n%s\nwant:\n%s", out, want)
	}
}
