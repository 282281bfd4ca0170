package generate

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/tailor-sec/tailor/profiles"
)

func TestAnchor(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		widened       bool
	}{
		{"/etc/passwd", "/etc/passwd", false},
		{"/etc/ssl/", "/etc/ssl", false},
		{"/usr/lib/**", "/usr/lib", false},
		{"/usr/lib/x86_64-linux-gnu/lib*.so*", "/usr/lib/x86_64-linux-gnu", true},
		{"/usr/lib/python3*/**", "/usr/lib", true},
		{"/etc/{passwd,group}", "/etc", true},
		{"@{PROC}/@{pid}/status", "/proc", true},
		{"@{sys}/devices/**", "/sys/devices", false},
		{"/**", "/", false},
	} {
		p, w := anchor(tc.pattern)
		if p != tc.path || w != tc.widened {
			t.Errorf("anchor(%q) = %q, %v; want %q, %v", tc.pattern, p, w, tc.path, tc.widened)
		}
	}
}

// grants runs landlockPlan and returns the rights per path.
func grants(t *testing.T, files []profiles.FileRule, execs []string) (map[string]landlock.AccessFSSet, profiles.LandlockPlan) {
	t.Helper()
	plan, err := PlanLandlock(PlanInput{Files: files, Execs: execs})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]landlock.AccessFSSet{}
	for _, p := range plan.Paths {
		a, err := profiles.ParseLandlockRights(p.Access)
		if err != nil {
			t.Fatal(err)
		}
		out[p.Path] = a
	}
	return out, plan
}

func rule(pattern string, access ...string) profiles.FileRule {
	return profiles.FileRule{Pattern: pattern, Access: access}
}

func TestLandlockRightsPerKind(t *testing.T) {
	const (
		f   = "/a/b/f"
		dir = "/a/b/d/"
	)
	type g = map[string]landlock.AccessFSSet
	for _, tc := range []struct {
		name string
		rule profiles.FileRule
		want g
	}{
		// Rights on the content of a file go on the file.
		{"read", rule(f, profiles.AccessRead), g{f: ll.AccessFSReadFile}},
		{"write", rule(f, profiles.AccessWrite), g{f: ll.AccessFSWriteFile | ll.AccessFSTruncate}},
		{"exec", rule(f, profiles.AccessExec), g{f: ll.AccessFSExecute | ll.AccessFSReadFile}},
		{"mmap-exec", rule(f, profiles.AccessMmapExec), g{f: ll.AccessFSExecute | ll.AccessFSReadFile}},
		{"setattr is truncate", rule(f, profiles.AccessSetattr), g{f: ll.AccessFSTruncate}},
		{"device ioctls", rule("/dev/tty", profiles.AccessRead, profiles.AccessWrite),
			g{"/dev/tty": ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev}},
		// Making or removing a name needs a right on its directory, nothing on the file.
		{"create only", rule(f, profiles.AccessCreate), g{"/a/b": ll.AccessFSMakeReg}},
		{"delete never created", rule(f, profiles.AccessDelete), g{"/a/b": ll.AccessFSRemoveFile}},
		{"symlink", rule(f, profiles.AccessSymlink), g{"/a/b": ll.AccessFSMakeSym}},
		{"mknod: fifo and socket, never devices", rule(f, profiles.AccessMknod), g{"/a/b": ll.AccessFSMakeFifo | ll.AccessFSMakeSock}},
		{"unix bind", rule(f, profiles.AccessBind), g{"/a/b": ll.AccessFSMakeSock}},
		{"unix connect: not restricted", rule(f, profiles.AccessConnect), g{}},
		{"rename-from", rule(f, profiles.AccessRenameFrom), g{"/a/b": ll.AccessFSRemoveFile}},
		{"rename-to may replace", rule(f, profiles.AccessRenameTo), g{"/a/b": ll.AccessFSMakeReg | ll.AccessFSRemoveFile}},
		{"link-to", rule(f, profiles.AccessLinkTo), g{"/a/b": ll.AccessFSMakeReg}},
		{"link-from", rule(f, profiles.AccessLinkFrom), g{}},
		// Directories: mkdir and rmdir on the parent, listing on the directory.
		{"mkdir", rule(dir, profiles.AccessMkdir), g{"/a/b": ll.AccessFSMakeDir}},
		{"rmdir", rule(dir, profiles.AccessRmdir), g{"/a/b": ll.AccessFSRemoveDir}},
		{"list", rule(dir, profiles.AccessList), g{"/a/b/d": ll.AccessFSReadDir}},
		{"read of a directory is read_dir only", rule(dir, profiles.AccessRead), g{"/a/b/d": ll.AccessFSReadDir}},
		{"rename-from directory", rule(dir, profiles.AccessRenameFrom), g{"/a/b": ll.AccessFSRemoveDir}},
		{"rename-to directory", rule(dir, profiles.AccessRenameTo), g{"/a/b": ll.AccessFSMakeDir | ll.AccessFSRemoveDir}},
		// A created file: read and write reach the directory only when it was written.
		{"created then written", rule(f, profiles.AccessCreate, profiles.AccessWrite),
			g{"/a/b": ll.AccessFSMakeReg | ll.AccessFSWriteFile | ll.AccessFSTruncate}},
		{"created, written and read", rule(f, profiles.AccessCreate, profiles.AccessRead, profiles.AccessWrite),
			g{"/a/b": ll.AccessFSMakeReg | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSReadFile}},
		{"created and read, never written", rule(f, profiles.AccessCreate, profiles.AccessRead),
			g{"/a/b": ll.AccessFSMakeReg, f: ll.AccessFSReadFile}},
		{"renamed in then read", rule(f, profiles.AccessRenameTo, profiles.AccessRead),
			g{"/a/b": ll.AccessFSMakeReg | ll.AccessFSRemoveFile, f: ll.AccessFSReadFile}},
		// Globs: everything on the directory holding the first glob.
		{"glob", rule("/usr/lib/*.so", profiles.AccessRead), g{"/usr/lib": ll.AccessFSReadFile | ll.AccessFSReadDir}},
		{"glob with create", rule("/tmp/*", profiles.AccessCreate, profiles.AccessDelete),
			g{"/tmp": ll.AccessFSMakeReg | ll.AccessFSRemoveFile}},
		{"DIR/**", rule("/srv/**", profiles.AccessRead, profiles.AccessWrite),
			g{"/srv": ll.AccessFSReadFile | ll.AccessFSReadDir | ll.AccessFSWriteFile | ll.AccessFSTruncate}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := grants(t, []profiles.FileRule{tc.rule}, nil)
			if !maps.Equal(got, tc.want) {
				t.Errorf("%v:\n got %v\nwant %v", tc.rule, got, tc.want)
			}
		})
	}
}

// No rule made for a file the target created gives read or write on its directory
// unless the target wrote that file; and then the widening is recorded.
func TestCreateNeverWidensContentUnlessWritten(t *testing.T) {
	content := landlock.AccessFSSet(ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSExecute)
	for _, k := range profiles.AccessKinds {
		if k == profiles.AccessWrite {
			continue
		}
		content := content
		if k == profiles.AccessSetattr {
			content &^= ll.AccessFSTruncate // a truncate by path of the created file
		}
		for _, created := range []string{profiles.AccessCreate, profiles.AccessRenameTo, profiles.AccessLinkTo, profiles.AccessSymlink, profiles.AccessMknod, profiles.AccessBind} {
			got, _ := grants(t, []profiles.FileRule{rule("/a/b/f", created, k)}, nil)
			if got["/a/b"]&content != 0 {
				t.Errorf("%s + %s gives %v on /a/b", created, k, got["/a/b"])
			}
		}
	}
	_, plan := grants(t, []profiles.FileRule{rule("/a/b/f", profiles.AccessCreate, profiles.AccessWrite)}, nil)
	w := plan.Paths[0].Widened
	if len(w) != 2 || !slices.ContainsFunc(w, func(w profiles.LandlockWidening) bool {
		return w.Rule == "/a/b/f" && w.Reason == whyCreatedWritten && slices.Equal(w.Access, []string{"write_file", "truncate"})
	}) {
		t.Errorf("widening not recorded: %+v", w)
	}
}

// A directory the target creates may be missing at start: the rights for names in it
// climb to the nearest directory it does not create (the "rm -rf d, replay" case).
func TestCreatedDirectoryClimbs(t *testing.T) {
	got, plan := grants(t, []profiles.FileRule{
		rule("/w/d/", profiles.AccessMkdir, profiles.AccessRmdir, profiles.AccessList),
		rule("/w/d/f", profiles.AccessCreate, profiles.AccessRenameFrom, profiles.AccessWrite),
		rule("/w/d/g", profiles.AccessDelete, profiles.AccessLinkFrom, profiles.AccessRenameTo, profiles.AccessSetattr),
		rule("/w/d/h", profiles.AccessDelete, profiles.AccessLinkTo),
	}, nil)
	want := map[string]landlock.AccessFSSet{
		"/w": ll.AccessFSMakeDir | ll.AccessFSRemoveDir | ll.AccessFSReadDir | ll.AccessFSMakeReg |
			ll.AccessFSRemoveFile | ll.AccessFSWriteFile | ll.AccessFSTruncate,
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if got["/w"]&ll.AccessFSRefer != 0 {
		t.Error("refer granted for renames within one directory")
	}
	for _, w := range plan.Paths[0].Widened {
		if w.Rule == "/w/d/f" && !strings.Contains(w.Reason, whyCreatedDir) {
			t.Errorf("climb not stated: %+v", w)
		}
	}
	if !slices.ContainsFunc(plan.NotEnforced, func(s string) bool { return strings.HasPrefix(s, "setattr") && strings.Contains(s, "/w/d/g") }) {
		t.Errorf("setattr not reported as not enforced: %v", plan.NotEnforced)
	}
}

func TestReferAcrossDirectories(t *testing.T) {
	got, _ := grants(t, []profiles.FileRule{
		rule("/a/x", profiles.AccessCreate, profiles.AccessWrite, profiles.AccessRenameFrom),
		rule("/b/y", profiles.AccessRenameTo),
		rule("/c/z", profiles.AccessRead),
	}, nil)
	for _, d := range []string{"/a", "/b"} {
		if got[d]&ll.AccessFSRefer == 0 {
			t.Errorf("%s lacks refer: %v", d, got[d])
		}
	}
	if got["/b"] != ll.AccessFSRefer|ll.AccessFSMakeReg|ll.AccessFSRemoveFile {
		t.Errorf("/b: %v", got["/b"])
	}
	if got["/c/z"]&ll.AccessFSRefer != 0 || got["/c"] != 0 {
		t.Errorf("refer on a directory without renames: %v", got)
	}
	// Links across directories too.
	got, _ = grants(t, []profiles.FileRule{rule("/a/x", profiles.AccessLinkFrom), rule("/b/y", profiles.AccessLinkTo)}, nil)
	if got["/a"] != ll.AccessFSRefer || got["/b"] != ll.AccessFSRefer|ll.AccessFSMakeReg {
		t.Errorf("link across directories: %v", got)
	}
}

// A created-then-written file never widens file contents over sensitive files.
func TestSensitiveNeverWidened(t *testing.T) {
	for _, p := range []string{"/etc/app.conf", "/root/.cache", "/home/u/.bash_history", "/x"} {
		got, plan := grants(t, []profiles.FileRule{rule(p, profiles.AccessCreate, profiles.AccessWrite)}, nil)
		dir := p[:strings.LastIndex(p, "/")]
		if dir == "" {
			dir = "/"
		}
		if got[dir] != ll.AccessFSMakeReg || got[p] != ll.AccessFSWriteFile|ll.AccessFSTruncate {
			t.Errorf("%s: %v", p, got)
		}
		if len(plan.Denied) != 1 || !strings.Contains(plan.Denied[0], p) {
			t.Errorf("%s: the narrowing is not stated: %v", p, plan.Denied)
		}
	}
	// A daemon's pid file in /run: docker.sock and /run/secrets are not contents a
	// write right reaches.
	got, _ := grants(t, []profiles.FileRule{rule("/run/app.pid", profiles.AccessCreate, profiles.AccessWrite)}, nil)
	if got["/run"] != ll.AccessFSMakeReg|ll.AccessFSWriteFile|ll.AccessFSTruncate {
		t.Errorf("/run/app.pid: %v", got)
	}
	if profiles.HoldsSensitive("/srv/app") || profiles.HoldsSensitive("/home/u/src") || profiles.HoldsSensitive("/var/lib/app") || !profiles.HoldsSensitive("/var/lib") {
		t.Error("ordinary directories taken for sensitive ones")
	}
}

// A program the target builds and runs: execute on the directory with the write.
func TestCreatedExecutable(t *testing.T) {
	got, _ := grants(t, []profiles.FileRule{rule("/w/prog", profiles.AccessCreate, profiles.AccessWrite, profiles.AccessExec, profiles.AccessRead)}, []string{"/w/prog"})
	want := map[string]landlock.AccessFSSet{"/w": ll.AccessFSMakeReg | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSExecute | ll.AccessFSReadFile}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLandlockPlanRefusesBadRules(t *testing.T) {
	for _, files := range [][]profiles.FileRule{
		{rule("relative", profiles.AccessRead)},
		{rule("/x", "chmod")},
	} {
		if _, err := PlanLandlock(PlanInput{Files: files}); err == nil {
			t.Errorf("%v accepted", files)
		}
	}
	if _, err := PlanLandlock(PlanInput{Execs: []string{"prog"}}); err == nil {
		t.Error("relative exec accepted")
	}
}

func TestTCPPlan(t *testing.T) {
	net := profiles.BundleNetwork{
		Binds:    []profiles.Port{{Family: "AF_INET", Port: 8080}, {Family: "AF_UNIX", Port: 0}},
		Listens:  []profiles.Port{{Family: "AF_INET6", Port: 8080}, {Family: "AF_INET", Port: 9090}},
		Connects: []profiles.Peer{{Family: "AF_INET", Address: "127.0.0.1", Port: 5432}, {Family: "AF_UNIX", Address: "@bus"}},
	}
	tcp := []profiles.Socket{{Family: "AF_INET", Type: "SOCK_STREAM"}}
	got := tcpPlan(tcp, net)
	if !slices.Equal(got.Bind, []uint16{8080, 9090}) || !slices.Equal(got.Connect, []uint16{5432}) {
		t.Errorf("tcp plan %+v", got)
	}
	// No TCP socket: no port at all (every TCP bind and connect refused).
	got = tcpPlan([]profiles.Socket{{Family: "AF_INET", Type: "SOCK_DGRAM"}}, net)
	if len(got.Bind)+len(got.Connect) != 0 {
		t.Errorf("ports without TCP sockets: %+v", got)
	}
	ne := notEnforced(nil, net)
	for _, want := range []string{"Landlock cannot filter by address (learned: 127.0.0.1 port 5432)", "abstract unix sockets are not restricted by Landlock (learned: @bus)"} {
		if !slices.ContainsFunc(ne, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("not enforced lacks %q: %v", want, ne)
		}
	}
}

func TestLandlockRightNamesRoundTrip(t *testing.T) {
	all := landlock.AccessFSSet(ll.AccessFSExecute | ll.AccessFSMakeReg | ll.AccessFSRefer | ll.AccessFSIoctlDev | ll.AccessFSTruncate)
	names := profiles.LandlockRightNames(all)
	if !slices.Equal(names, []string{"execute", "make_reg", "refer", "truncate", "ioctl_dev"}) {
		t.Errorf("names %v", names)
	}
	if back, err := profiles.ParseLandlockRights(names); err != nil || back != all {
		t.Errorf("round trip: %v %v", back, err)
	}
	if _, err := profiles.ParseLandlockRights([]string{"read_everything"}); err == nil {
		t.Error("unknown right accepted")
	}
}

// A device open that failed with ENXIO while learning keeps its rights (so it fails
// the same way under Landlock); other failures grant nothing.
func TestFailedDeviceOpenFailsTheSameWay(t *testing.T) {
	plan, err := PlanLandlock(PlanInput{Failed: []profiles.FailedRule{
		{Pattern: "/dev/tty", Access: []string{profiles.AccessRead, profiles.AccessWrite}, Errno: "ENXIO"},
		{Pattern: "/dev/pts/*", Access: []string{profiles.AccessRead}, Errno: "ENXIO"},
		{Pattern: "/etc/app.conf", Access: []string{profiles.AccessRead}, Errno: "ENOENT"},
		{Pattern: "/dev/sda", Access: []string{profiles.AccessRead}, Errno: "EACCES"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Paths) != 1 || plan.Paths[0].Path != "/dev/tty" ||
		!slices.Equal(plan.Paths[0].Access, []string{"write_file", "read_file", "truncate", "ioctl_dev"}) ||
		len(plan.Paths[0].Widened) != 1 || plan.Paths[0].Widened[0].Reason != whyFailedSame {
		t.Errorf("plan %+v", plan.Paths)
	}
}
