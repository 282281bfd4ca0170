package launch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A local target runs in a cgroup (v2) of its own, so that nothing it starts can
// outlive tailor: PR_SET_PDEATHSIG reaches only the target's first process, while a
// cgroup holds every descendant, double-forked daemons included, and cgroup.kill
// ends them all at once. The run's cgroup is a child of tailor's own cgroup (the
// limits set on tailor's unit still apply to the target), named after tailor's pid
// and start time. It is removed when the run ends; if tailor is killed, a guard
// process (tailor re-executed, outside the cgroup) sees its pipe close and removes
// it; if the guard is killed too, the next run sweeps what is left: every sibling
// cgroup whose owner is gone.

// GuardArg is the argv[1] that marks a cgroup guard process.
const GuardArg = "__cgroup-guard"

// runPrefix starts the name of every run cgroup.
const runPrefix = "tailor-run-"

// runCgroup is the cgroup of one run, and its guard.
type runCgroup struct {
	dir   string
	guard *exec.Cmd
	// alive is the guard's pipe: closing it (or tailor's death) tells the guard to
	// remove the cgroup.
	alive *os.File
}

// findRoot is cgroupRoot; tests replace it to exercise the fallback of a host where
// no cgroup can be made.
var findRoot = cgroupRoot

// cgroupRoot returns the directory of tailor's own cgroup in the v2 hierarchy, the
// parent of the run cgroups.
func cgroupRoot() (string, error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	for _, l := range strings.Split(string(own), "\n") {
		if rest, ok := strings.CutPrefix(l, "0::"); ok {
			dir := filepath.Join(mount, filepath.Clean("/"+rest))
			if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
				return "", fmt.Errorf("tailor's cgroup %s: %w", rest, err)
			}
			return dir, nil
		}
	}
	return "", errors.New("tailor is in no cgroup v2 (no 0:: line in /proc/self/cgroup)")
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on a hybrid host).
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4], nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// startTime returns a process's start time (clock ticks after boot, field 22 of
// /proc/PID/stat): with the pid, it names one process across pid reuse.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces and parentheses itself.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state): field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// runName is the cgroup name of the n-th run of the tailor process pid.
func runName(pid int, start uint64, n int) string {
	return runPrefix + strconv.Itoa(pid) + "-" + strconv.FormatUint(start, 10) + "." + strconv.Itoa(n)
}

// ownerAlive says whether the tailor that made the run cgroup name still runs.
func ownerAlive(name string) bool {
	rest, ok := strings.CutPrefix(name, runPrefix)
	if !ok {
		return true // not a run cgroup: never touched
	}
	p, s, ok := strings.Cut(rest, "-")
	s, _, _ = strings.Cut(s, ".") // the run's counter
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(s, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return true
	}
	got, err := startTime(pid)
	return err == nil && got == start
}

// sweep removes the run cgroups under root whose tailor is gone (killed with its
// guard), killing what still runs in them. It returns a note per cgroup removed.
func sweep(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var notes []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), runPrefix) || ownerAlive(e.Name()) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		n, err := removeCgroup(dir)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("could not remove %s, left by a tailor run that was killed: %v", dir, err))
		case n > 0:
			notes = append(notes, fmt.Sprintf("killed %d processes left running by a tailor run that was killed (cgroup %s)", n, dir))
		}
	}
	return notes
}

// newRunCgroup sweeps what killed runs left, makes this run's cgroup and starts its
// guard. notes say what the sweep did.
func newRunCgroup() (*runCgroup, []string, error) {
	root, err := findRoot()
	if err != nil {
		return nil, nil, err
	}
	notes := sweep(root)
	start, err := startTime(os.Getpid())
	if err != nil {
		return nil, notes, err
	}
	// One tailor may run several targets (tests, compose): a counter tells them apart.
	var dir string
	for i := 0; ; i++ {
		dir = filepath.Join(root, runName(os.Getpid(), start, i))
		err = os.Mkdir(dir, 0o755)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, notes, fmt.Errorf("creating a cgroup under %s: %w", root, err)
	}
	cg := &runCgroup{dir: dir}
	if err := cg.startGuard(); err != nil {
		_ = os.Remove(dir)
		return nil, notes, err
	}
	return cg, notes, nil
}

// startGuard starts `tailor __cgroup-guard DIR` with a pipe as its stdin: when the
// write end closes (Remove, or tailor's death, SIGKILL included) the guard removes
// the cgroup. It gets no terminal signals (a process group of its own) and ignores
// the rest.
func (cg *runCgroup) startGuard() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("cgroup guard: %w", err)
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{os.Args[0], GuardArg, cg.dir},
		Stdin:       r,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the cgroup guard: %w", err)
	}
	cg.guard, cg.alive = cmd, w
	return nil
}

// add moves pid (every thread of it) into the cgroup.
func (cg *runCgroup) add(pid int) error {
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("moving the target into %s: %w", cg.dir, err)
	}
	return nil
}

// remove kills what is left in the cgroup, removes it and lets the guard go.
func (cg *runCgroup) remove() error {
	_, err := removeCgroup(cg.dir)
	cg.alive.Close()
	_ = cg.guard.Wait()
	return err
}

// guardMain is the guard process: it waits for its stdin to close, then removes the
// cgroup dir.
func guardMain(dir string) {
	signal.Ignore(unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE)
	_, _ = io.Copy(io.Discard, os.Stdin)
	if _, err := removeCgroup(dir); err != nil {
		fmt.Fprintf(os.Stderr, "tailor: cgroup guard: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// removeCgroup kills every process of the cgroup at dir and beneath it and removes
// the directories, deepest first. It returns how many processes were still running.
// A cgroup already gone is no error.
func removeCgroup(dir string) (int, error) {
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	n := len(strings.Fields(string(procs)))
	if err := killCgroup(dir); err != nil {
		return n, err
	}
	// Directories the target made beneath, deepest first.
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := rmdirWhenEmpty(dirs[i]); err != nil {
			return n, err
		}
	}
	return n, nil
}

// killCgroup kills every process in the cgroup's subtree: with cgroup.kill (Linux
// 5.14), else by sending SIGKILL to each member until none is left (a fork between
// the read and the kill is found at the next round).
func killCgroup(dir string) error {
	err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	if err == nil || errors.Is(err, fs.ErrNotExist) && !exists(dir) {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("killing the processes of %s: %w", dir, err)
	}
	for round := 0; round < 1000; round++ {
		left := 0
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
					left++
				}
			}
			return nil
		})
		if left == 0 {
			return nil
		}
	}
	return fmt.Errorf("processes of %s kept forking past 1000 rounds of SIGKILL", dir)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// rmdirWhenEmpty removes a cgroup directory once its killed processes have exited
// (rmdir fails with EBUSY until then), for up to five seconds.
func rmdirWhenEmpty(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		// Killed processes leave the cgroup as they exit, within milliseconds;
		// cgroup.events could be watched instead, for a wait this short.
		time.Sleep(wait)
	}
}
