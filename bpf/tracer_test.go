package bpf

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"

	"github.com/tailor-sec/tailor/internal/testpriv"
)

// The test binary doubles as a minimal launcher: with TAILOR_BPF_TEST_CHILD set it
// waits for a byte on stdin, installs an allow-all seccomp filter and execs argv.
func TestMain(m *testing.M) {
	if os.Getenv("TAILOR_BPF_TEST_CHILD") == "1" {
		runtime.LockOSThread()
		var b [1]byte
		os.Stdin.Read(b[:])
		path, err := exec.LookPath(os.Args[1])
		if err != nil {
			os.Exit(127)
		}
		f, err := libseccomp.NewFilter(libseccomp.ActAllow)
		if err != nil {
			os.Exit(126)
		}
		if os.Getenv("TAILOR_BPF_TEST_DENY") == "1" && denyRules(f) != nil {
			os.Exit(123)
		}
		if err := f.Load(); err != nil {
			os.Exit(125)
		}
		syscall.Exec(path, os.Args[1:], os.Environ())
		os.Exit(124)
	}
	os.Exit(m.Run())
}

// denyRules makes the child's filter act like an enforcing profile for the watch
// test: mkdir and mkdirat fail with EPERM, and appending opens with EACCES (what a
// Landlock refusal gives) for appending opens.
func denyRules(f *libseccomp.ScmpFilter) error {
	for _, name := range []string{"mkdir", "mkdirat"} {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			return err
		}
		if err := f.AddRule(nr, libseccomp.ActErrno.SetReturnCode(int16(syscall.EPERM))); err != nil {
			return err
		}
	}
	nr, err := libseccomp.GetSyscallFromName("openat")
	if err != nil {
		return err
	}
	cond, err := libseccomp.MakeCondition(2, libseccomp.CompareMaskedEqual, syscall.O_APPEND, syscall.O_APPEND)
	if err != nil {
		return err
	}
	return f.AddRuleConditional(nr, libseccomp.ActErrno.SetReturnCode(int16(syscall.EACCES)), []libseccomp.ScmpCondition{cond})
}

func openTracer(t *testing.T) *Tracer {
	return openTracerWith(t, Options{})
}

func openTracerWith(t *testing.T, opt Options) *Tracer {
	t.Helper()
	testpriv.RequireRoot(t)
	tr, err := Open(opt)
	if err != nil {
		t.Fatalf("opening tracer: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// runTraced starts argv under the minimal launcher, registers it as target and waits.
func runTraced(t *testing.T, tr *Tracer, argv ...string) uint32 {
	t.Helper()
	target, err := tr.NewTarget()
	if err != nil {
		t.Fatal(err)
	}
	runTarget(t, tr, target, nil, argv...)
	return target
}

// runTarget runs argv as target, with extra environment for the launcher.
func runTarget(t *testing.T, tr *Tracer, target uint32, env []string, argv ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(append(os.Environ(), "TAILOR_BPF_TEST_CHILD=1"), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddProcess(target, cmd.Process.Pid, "launcher"); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte{1})
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
}

func TestTracerSeesSyscallsFilesExecs(t *testing.T) {
	tr := openTracer(t)
	dir := t.TempDir()
	target := runTraced(t, tr, "/bin/sh", "-c", "cat /etc/hostname > "+dir+"/out; ls "+dir+" >/dev/null")
	tr.Flush()

	sc, err := tr.Syscalls(target)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, nr := range sc[TableNative] {
		_, n, ok := SyscallName(TableNative, nr)
		if ok {
			names[n] = true
		}
	}
	for _, want := range []string{"execve", "openat", "read", "write", "exit_group"} {
		if !names[want] {
			t.Errorf("syscall %s not recorded; got %v", want, names)
		}
	}
	if names["seccomp"] {
		t.Errorf("seccomp recorded: the launcher's set-up before its filter leaked in")
	}

	files := map[string]uint32{}
	var execs []string
	drain(tr, func(ev Event) {
		switch e := ev.(type) {
		case *FileEvent:
			files[e.Path] |= e.Access
		case *ExecEvent:
			execs = append(execs, e.Filename)
		}
	})
	if files["/etc/hostname"]&AccRead == 0 {
		t.Errorf("/etc/hostname read not recorded: %v", files)
	}
	if files[dir+"/out"]&(AccWrite|AccCreate) != AccWrite|AccCreate {
		t.Errorf("%s/out write+create not recorded: %v", dir, files)
	}
	if files[dir]&AccList == 0 {
		t.Errorf("listing of %s not recorded: %v", dir, files)
	}
	for _, want := range []string{"/bin/sh", "/usr/bin/cat", "/usr/bin/ls"} {
		if !slices.Contains(execs, want) {
			t.Errorf("exec %s not recorded; got %v", want, execs)
		}
	}
	c, err := tr.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.RingbufDrops+c.TasksFull+c.DecodeErrors+c.ChannelDrops != 0 {
		t.Errorf("losses: %+v", c)
	}
}

func drain(tr *Tracer, fn func(Event)) {
	for {
		select {
		case ev := <-tr.Events():
			fn(ev)
		default:
			return
		}
	}
}

// The tracked-tgid bitmap the syscall hooks test before the tasks lookup must hold a
// bit for every thread group in tasks (else its syscalls would be skipped), set by the
// loader for the process it adds and by the fork hook for descendants, and cleared
// when a group exits.
func TestTrackedBitmapFollowsTasks(t *testing.T) {
	tr := openTracer(t)
	target, err := tr.NewTarget()
	if err != nil {
		t.Fatal(err)
	}
	marked := func(pid int) bool {
		w := pid / 64
		return atomic.LoadUint64((*uint64)(unsafe.Pointer(&tr.tracked[w*8])))&(1<<(pid%64)) != 0
	}
	cmd := exec.Command(os.Args[0], "/bin/sh", "-c", "sleep 30 & a=$!; sleep 30 & b=$!; read x; kill $a $b; wait")
	cmd.Env = append(os.Environ(), "TAILOR_BPF_TEST_CHILD=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if err := tr.AddProcess(target, cmd.Process.Pid, "launcher"); err != nil {
		t.Fatal(err)
	}
	if !marked(cmd.Process.Pid) {
		t.Fatalf("pid %d added but not marked", cmd.Process.Pid)
	}
	in.Write([]byte{1}) // the launcher goes on; sh reads the next byte
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the kernel gives no event for a map update
		pids = tr.TargetProcesses(target)
	}
	if len(pids) < 3 {
		t.Fatalf("target's processes %v: want sh and two sleeps", pids)
	}
	for _, p := range pids {
		if !marked(p) {
			t.Errorf("pid %d is in tasks but its bit is clear: its syscalls would be missed", p)
		}
	}
	in.Write([]byte("\n"))
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if left := tr.TargetProcesses(target); len(left) != 0 {
		t.Errorf("tasks still holds %v after the target exited", left)
	}
	for _, p := range pids {
		if marked(p) {
			t.Errorf("pid %d exited but its bit is still set", p)
		}
	}
}
