// Package launch starts a target under confinement by re-executing tailor itself.
//
// The parent runs `/proc/self/exe __launch MODE` with three inherited descriptors: a
// payload (what to run, as JSON), a status pipe back to the parent, and a release pipe.
// The child waits for the release, so the parent knows the pid before the target runs a
// single instruction (a tracer can register it first). Then the child runs the setup
// function its mode registered, and executes the target with the mode's seccomp filter
// loaded immediately before execve, on the locked main thread. A failure before execve
// reaches the parent as one line and an exit code over the status pipe; a successful
// execve closes that pipe (close-on-exec), which is how the parent tells the two apart.
package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
)

// Arg is the argv[1] that marks a launcher child.
const Arg = "__launch"

// Descriptor numbers in the child: ExtraFiles start at 3.
const (
	payloadFD = 3
	statusFD  = 4
	releaseFD = 5
)

// Payload is what the parent tells the child to run.
type Payload struct {
	// Argv is the target's argv; Argv[0] is looked up in the PATH of Env.
	Argv []string `json:"argv"`
	// Env is the target's environment.
	Env []string `json:"env"`
	// Dir is the target's working directory; empty for the launcher's own.
	Dir string `json:"dir,omitempty"`
	// Mode is the mode's own configuration, for its setup function.
	Mode json.RawMessage `json:"mode,omitempty"`
}

// Target is what a setup function sees: the payload and the resolved program path.
type Target struct {
	Payload
	// Path is the absolute or relative path Argv[0] resolved to, before any
	// confinement was applied.
	Path string
}

// Setup confines the child before execve. It returns the seccomp filter to load last,
// or nil for none. It runs on the locked main thread, after the release. An error it
// returns is reported to the parent; wrap a fail sentinel to choose the exit code.
type Setup func(t *Target) (*seccomp.ScmpFilter, error)

var (
	modesMu sync.Mutex
	modes   = map[string]Setup{}
)

// Register makes a mode available to launcher children. Packages call it from init so
// the mode exists before main calls Main.
func Register(mode string, fn Setup) {
	modesMu.Lock()
	defer modesMu.Unlock()
	if _, dup := modes[mode]; dup {
		panic("launch: mode " + mode + " registered twice")
	}
	modes[mode] = fn
}

func lookupMode(mode string) (Setup, bool) {
	modesMu.Lock()
	defer modesMu.Unlock()
	fn, ok := modes[mode]
	return fn, ok
}

func isChild() bool { return len(os.Args) >= 3 && os.Args[1] == Arg }

func init() {
	// Package init runs on the main thread; locking here keeps the child's main
	// goroutine there until execve.
	if isChild() {
		runtime.LockOSThread()
	}
}

// Main runs the launcher child or the cgroup guard when this process is one, and
// never returns then. Otherwise it returns at once. Call it as the first statement
// of main.
func Main() {
	if len(os.Args) == 3 && os.Args[1] == GuardArg {
		guardMain(os.Args[2])
	}
	if !isChild() {
		return
	}
	err := child(os.Args[2])
	// child returns only on failure: tell the parent, exit with the error's code.
	status := os.NewFile(statusFD, "status")
	msg, _ := json.Marshal(childError{Code: fail.Code(err), Message: err.Error()})
	_, _ = status.Write(msg)
	os.Exit(fail.Code(err))
}

type childError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func child(mode string) error {
	for _, fd := range []int{payloadFD, statusFD, releaseFD} {
		// The target must not inherit the launcher's descriptors.
		unix.CloseOnExec(fd)
	}
	data, err := io.ReadAll(os.NewFile(payloadFD, "payload"))
	if err != nil {
		return fmt.Errorf("launcher: reading payload: %w", err)
	}
	var t Target
	if err := json.Unmarshal(data, &t.Payload); err != nil {
		return fmt.Errorf("launcher: decoding payload: %w", err)
	}
	if len(t.Argv) == 0 {
		return fmt.Errorf("%w: no command given", fail.ErrBadInput)
	}
	var b [1]byte
	if n, _ := os.NewFile(releaseFD, "release").Read(b[:]); n != 1 {
		return errors.New("launcher: parent went away before releasing the target")
	}
	setup, ok := lookupMode(mode)
	if !ok {
		return fmt.Errorf("launcher: unknown mode %q", mode)
	}
	if t.Dir != "" {
		if err := os.Chdir(t.Dir); err != nil {
			return fmt.Errorf("%w: working directory: %w", fail.ErrBadInput, err)
		}
	}
	// LookPath calls faccessat2, which the filter may deny: resolve first. It searches
	// the target's PATH, not the launcher's.
	if err := os.Setenv("PATH", envValue(t.Env, "PATH")); err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	t.Path, err = exec.LookPath(t.Argv[0])
	if err != nil {
		return fmt.Errorf("%w: command %q not found or not executable (PATH=%s)", fail.ErrBadInput, t.Argv[0], os.Getenv("PATH"))
	}
	filter, err := setup(&t)
	if err != nil {
		return err
	}
	var prog []byte
	if filter != nil {
		prog, err = exportBPF(filter)
		if err != nil {
			return err
		}
	}
	// The kernel requires no_new_privs (or CAP_SYS_ADMIN, which setup may have
	// dropped) for an unprivileged filter; it is part of every mode's contract.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("launcher: setting no_new_privs: %w", err)
	}
	if err := restoreNofile(); err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	err = seccompExec(prog, t.Path, t.Argv, t.Env)
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w: %w (the profile does not allow running the command itself)", fail.ErrRefused, err)
	}
	return fmt.Errorf("launcher: %w", err)
}

// exportBPF returns the filter as the raw BPF program the kernel takes. libseccomp
// 2.5 can export only to a descriptor, so it goes through a memfd.
func exportBPF(f *seccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("tailor-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("launcher: exporting seccomp filter: %w", err)
	}
	mf := os.NewFile(uintptr(fd), "tailor-seccomp")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, fmt.Errorf("launcher: exporting seccomp filter: %w", err)
	}
	if _, err := mf.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("launcher: exporting seccomp filter: %w", err)
	}
	prog, err := io.ReadAll(mf)
	if err != nil {
		return nil, fmt.Errorf("launcher: exporting seccomp filter: %w", err)
	}
	return prog, nil
}

func envValue(env []string, key string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == key {
			v = val // the last one wins, as in getenv of most libcs
		}
	}
	return v
}

// Stdio are the target's standard streams; nil means /dev/null, as in os/exec.
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Process is a started, not yet necessarily released, launcher child.
type Process struct {
	cmd      *exec.Cmd
	status   *os.File
	release  *os.File
	released bool
	// waited is closed once the child was waited for: the thread that started it
	// may then go.
	waited chan struct{}
	// cg is the target's cgroup; nil when it could not be made (contained says why).
	cg        *runCgroup
	contained error
	notes     []string
}

// Start starts the launcher child for mode. The target does not run until Release.
func Start(mode string, p Payload, stdio Stdio) (*Process, error) {
	if len(p.Argv) == 0 {
		return nil, fmt.Errorf("%w: no command given", fail.ErrBadInput)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding launch payload: %w", err)
	}
	// A memfd holds a payload of any size without a writer goroutine.
	fd, err := unix.MemfdCreate("tailor-payload", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating launch payload: %w", err)
	}
	payload := os.NewFile(uintptr(fd), "tailor-payload")
	defer payload.Close()
	if _, err := payload.Write(data); err != nil {
		return nil, fmt.Errorf("writing launch payload: %w", err)
	}
	if _, err := payload.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("writing launch payload: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating status pipe: %w", err)
	}
	defer statusW.Close()
	releaseR, releaseW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		return nil, fmt.Errorf("creating release pipe: %w", err)
	}
	defer releaseR.Close()

	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{os.Args[0], Arg, mode},
		Env:        os.Environ(),
		Stdin:      stdio.Stdin,
		Stdout:     stdio.Stdout,
		Stderr:     stdio.Stderr,
		ExtraFiles: []*os.File{payload, statusW, releaseR},
		// The target must not outlive tailor: killed (even with SIGKILL), tailor takes
		// it along, instead of leaving it running orphaned under the allow-all learning
		// filter. The signal survives the execve of the target (not of a set-user-ID
		// one) and the capability drop.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	proc := &Process{cmd: cmd, status: statusR, release: releaseW, waited: make(chan struct{})}
	proc.cg, proc.notes, proc.contained = newRunCgroup()
	if err := startHoldingThread(cmd, proc.waited); err != nil {
		statusR.Close()
		releaseW.Close()
		_ = proc.Cleanup()
		return nil, fmt.Errorf("starting launcher: %w", err)
	}
	// The child waits for the release: it has forked nothing yet.
	if proc.cg != nil {
		if err := proc.cg.add(cmd.Process.Pid); err != nil {
			_ = proc.Cleanup()
			proc.contained = err
		}
	}
	return proc, nil
}

// Contained says why the target is not in a cgroup of its own (nil when it is): its
// descendants may then outlive a tailor that is killed (its first process does not,
// PR_SET_PDEATHSIG). The caller warns.
func (p *Process) Contained() error { return p.contained }

// Notes say what starting did besides the target: processes of killed earlier runs
// that it ended.
func (p *Process) Notes() []string { return p.notes }

// Cleanup kills whatever still runs in the target's cgroup (descendants that
// outlived its first process) and removes the cgroup. Call it when the run is over;
// a Wait without Release does it itself.
func (p *Process) Cleanup() error {
	if p.cg == nil {
		return nil
	}
	err := p.cg.remove()
	p.cg = nil
	return err
}

// startHoldingThread starts cmd from a thread locked until waited is closed. The
// kernel sends the parent-death signal when the forking thread ends, not the process,
// and Go ends a thread when a goroutine locked to it exits (as namespace-entering
// code does on purpose): holding the thread keeps anyone else from running, and
// ending, there.
func startHoldingThread(cmd *exec.Cmd, waited <-chan struct{}) error {
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			<-waited
		}
		runtime.UnlockOSThread()
	}()
	return <-started
}

// Pid is the pid of the child, which the target keeps after execve.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Release lets the child confine itself and execute the target.
func (p *Process) Release() error {
	if p.released {
		return nil
	}
	p.released = true
	defer p.release.Close()
	if _, err := p.release.Write([]byte{1}); err != nil {
		return fmt.Errorf("releasing target: %w", err)
	}
	return nil
}

// Signal sends sig to the child (the target once it executed).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the target and returns its exit status (128+signal when a signal
// killed it, as shells report it). A failure of the launcher before execve is returned
// as err, one line wrapped around the sentinel of its exit code. Without a Release,
// Wait aborts the child.
func (p *Process) Wait() (int, error) {
	if !p.released {
		p.released = true
		p.release.Close()
		defer p.Cleanup()
	}
	msg, readErr := io.ReadAll(p.status)
	p.status.Close()
	waitErr := p.cmd.Wait()
	close(p.waited)
	if len(msg) > 0 {
		var ce childError
		if err := json.Unmarshal(msg, &ce); err != nil {
			return 0, fmt.Errorf("launcher failed with unreadable status %q", msg)
		}
		return 0, withCode(ce.Code, ce.Message)
	}
	if readErr != nil {
		return 0, fmt.Errorf("reading launcher status: %w", readErr)
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return 0, fmt.Errorf("waiting for target: %w", waitErr)
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// sentinels are the fail errors a child's exit code can stand for.
var sentinels = []error{
	fail.ErrBadInput, fail.ErrPrivilege, fail.ErrKernel, fail.ErrLoss, fail.ErrDocker,
	fail.ErrAnomaly, fail.ErrWorkload, fail.ErrRefused, fail.ErrInterrupted,
}

// withCode rebuilds the child's error in the parent: the message already names the
// sentinel, so only the chain is restored, not the text.
func withCode(code int, msg string) error {
	for _, s := range sentinels {
		if fail.Code(s) == code {
			return &remoteError{msg: msg, sentinel: s}
		}
	}
	return errors.New(msg)
}

type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// LearnMode is the setup of the "learn" mode: no confinement beyond no_new_privs and
// an allow-all filter, so the target runs as it would under enforcement (a filter is
// installed: Seccomp: 2) while the tracer watches it. The filter accepts the native,
// x86 and x32 tables so 32-bit binaries are traced rather than killed.
func LearnMode(*Target) (*seccomp.ScmpFilter, error) {
	f, err := seccomp.NewFilter(seccomp.ActAllow)
	if err != nil {
		return nil, fmt.Errorf("learn: creating seccomp filter: %w", err)
	}
	native, err := seccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	if native != seccomp.ArchAMD64 {
		return f, nil // the native table is in every filter already
	}
	for _, a := range []seccomp.ScmpArch{seccomp.ArchX86, seccomp.ArchX32} {
		if err := f.AddArch(a); err != nil {
			return nil, fmt.Errorf("learn: adding %v to seccomp filter: %w", a, err)
		}
	}
	return f, nil
}

func init() { Register("learn", LearnMode) }
