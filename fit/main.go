// Command fit is tailor's fit benchmark (make fit, docs/fit.md): for a corpus of real
// programs from Debian packages it learns workload A, replays A three times under
// `tailor enforce --anomalies`, runs a held-out workload B that a user would call
// normal use, and plays attack steps inside the confined process (testdata/fit/
// attack.c, preloaded); it prints a table per program and a summary line
//
//	fit: programs=N false-denials=X attacks-flagged=Y/Z attacks-blocked=W/Z
//
// and writes docs/fit.md with a chart. A false denial is any anomaly or failure in a
// replay of A or in B. Run as root.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/oci/caps"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/profiles"
)

// attackSteps are played one per confined run, in this order.
var attackSteps = []string{"shell", "shadow", "write-etc", "write-bin", "connect", "unshare", "mount", "ptrace"}

// corpus is every program, in table order; short is the one `make test` runs.
var corpus = []*program{&nginx, &redis, &postgres, &pythonHTTP, &git, &sqlite, &nginxContainer, &postgresContainer}

const shortProgram = "sqlite3"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "workload" {
		// Self-invoked as `tailor learn --workload`: drive the named program.
		if err := workloadMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fit workload:", err)
			os.Exit(1)
		}
		return
	}
	short := flag.Bool("short", false, "run only "+shortProgram+" (what make test runs)")
	only := flag.String("only", "", "comma-separated program names to run")
	tailor := flag.String("tailor", "bin/tailor", "the tailor binary")
	doc := flag.String("doc", "docs/fit.md", "write the report here (empty: none)")
	flag.Parse()
	var progs []*program
	for _, p := range corpus {
		if (*short && p.name != shortProgram) || (*only != "" && !slices.Contains(strings.Split(*only, ","), p.name)) {
			continue
		}
		progs = append(progs, p)
	}
	rep, err := run(*tailor, progs, false, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fit:", err)
		os.Exit(1)
	}
	if *doc != "" {
		if err := writeDoc(*doc, rep); err != nil {
			fmt.Fprintln(os.Stderr, "fit:", err)
			os.Exit(1)
		}
	}
}

// workloadMain is `fit workload NAME PHASE DIR PORT`.
func workloadMain(args []string) error {
	if len(args) != 4 {
		return errors.New("usage: fit workload NAME PHASE DIR PORT")
	}
	port, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	for _, p := range corpus {
		if p.name == args[0] {
			return p.workload(&env{port: port}, args[2], args[1], "")
		}
	}
	return fmt.Errorf("no program %q", args[0])
}

// attackResult is one attack step against one program.
type attackResult struct {
	step             string
	result           string // what the step got: ok or an errno name
	flagged, blocked bool
	category         string // of the first anomaly after the step
}

// phaseResult is one confined run.
type phaseResult struct {
	anomalies []string // "kind detail" of each distinct anomaly
	worked    bool
	err       string
}

// progResult is one program's row.
type progResult struct {
	name                        string
	container                   bool
	syscalls, files, caps       int
	strictSyscalls, strictFiles int
	replays                     []phaseResult
	b                           phaseResult
	attacks                     []attackResult
	setupErr                    string
}

func (r *progResult) falseDenials() int {
	n := 0
	for _, ph := range append(slices.Clone(r.replays), r.b) {
		n += len(ph.anomalies)
		if !ph.worked {
			n++
		}
	}
	return n
}

type report struct {
	programs []*progResult
	tables   string
	summary  string
}

// runner holds one benchmark run's files.
type runner struct {
	tailor string
	self   string
	root   string
	lib    string
	victim *exec.Cmd
	mnt    string
	port   int
	// replays of A and attack steps to play
	replays int
	attacks []string
	// dk is the Docker daemon of the container programs, started on first use.
	dk *docker
}

// run measures progs with the tailor binary; quick plays one replay and three attack
// steps (the test in make test).
func run(tailor string, progs []*program, quick bool, out io.Writer) (*report, error) {
	var err error
	r := &runner{port: 18400, replays: 3, attacks: attackSteps}
	if quick {
		r.replays, r.attacks = 1, []string{"shell", "shadow", "connect"}
	}
	if r.tailor, err = filepath.Abs(tailor); err != nil {
		return nil, err
	}
	if _, err := os.Stat(r.tailor); err != nil {
		return nil, fmt.Errorf("%v: build it first (make build)", err)
	}
	if r.self, err = os.Executable(); err != nil {
		return nil, err
	}
	if r.root, err = os.MkdirTemp("", "tailor-fit-"); err != nil {
		return nil, err
	}
	if os.Getenv("FIT_KEEP") == "" {
		defer os.RemoveAll(r.root)
	} else {
		fmt.Fprintln(out, "fit: keeping", r.root)
	}
	if err := os.Chmod(r.root, 0o755); err != nil { // postgres runs as its own user
		return nil, err
	}
	r.lib = filepath.Join(r.root, "attack.so")
	src, err := filepath.Abs(filepath.Join(moduleRoot(), "testdata/fit/attack.c"))
	if err != nil {
		return nil, err
	}
	if b, err := exec.Command("gcc", "-shared", "-fPIC", "-O1", "-o", r.lib, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the attack library: %v: %s", err, b)
	}
	r.mnt = filepath.Join(r.root, "mnt")
	if err := os.Mkdir(r.mnt, 0o755); err != nil {
		return nil, err
	}
	r.victim = exec.Command("sleep", "3600")
	if err := r.victim.Start(); err != nil {
		return nil, err
	}
	defer func() { r.victim.Process.Kill(); r.victim.Wait() }()

	defer func() {
		if err := r.closeDaemon(); err != nil {
			fmt.Fprintln(out, "fit: stopping docker:", err)
		}
	}()

	rep := &report{}
	var tables strings.Builder
	for i, p := range progs {
		r.port = 18400 + 10*i
		res := r.program(p)
		rep.programs = append(rep.programs, res)
		t := table(res)
		tables.WriteString(t + "\n")
		fmt.Fprintln(out, t)
	}
	rep.tables = tables.String()
	fd, flagged, blocked, total := 0, 0, 0, 0
	for _, res := range rep.programs {
		fd += res.falseDenials()
		for _, a := range res.attacks {
			total++
			if a.flagged {
				flagged++
			}
			if a.blocked {
				blocked++
			}
		}
	}
	rep.summary = fmt.Sprintf("fit: programs=%d false-denials=%d attacks-flagged=%d/%d attacks-blocked=%d/%d", len(rep.programs), fd, flagged, total, blocked, total)
	fmt.Fprintln(out, rep.summary)
	return rep, nil
}

// moduleRoot is the directory of go.mod, found from the working directory up.
func moduleRoot() string {
	d, _ := os.Getwd()
	for dir := d; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
	}
	return d
}

func (r *runner) baseEnv() []string {
	return append(os.Environ(), "LD_PRELOAD="+r.lib)
}

// fresh makes dir anew for phase.
func (r *runner) fresh(p *program, e *env, dir, phase string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return p.setup(e, dir, phase)
}

func (r *runner) program(p *program) *progResult {
	if p.container != nil {
		return r.containerProgram(p)
	}
	res := &progResult{name: p.name}
	e := &env{root: r.root, port: r.port}
	base := filepath.Join(r.root, strings.ReplaceAll(p.name, " ", "-"))
	dirA, dirB := filepath.Join(base, "checkout-a"), filepath.Join(base, "elsewhere", "checkout-b")
	prof, strict := filepath.Join(base, "profile"), filepath.Join(base, "profile-strict")
	fail := func(format string, args ...any) *progResult {
		res.setupErr = fmt.Sprintf(format, args...)
		return res
	}
	if err := r.fresh(p, e, dirA, "A"); err != nil {
		return fail("setup: %v", err)
	}
	recs, err := r.learn(p, e, dirA, base)
	if err != nil {
		return fail("learn: %v", err)
	}
	if b, err := exec.Command(r.tailor, append([]string{"generate", "-o", prof}, recs...)...).CombinedOutput(); err != nil {
		return fail("generate: %v: %s", err, b)
	}
	if b, err := exec.Command(r.tailor, append([]string{"generate", "--strict", "-o", strict}, recs...)...).CombinedOutput(); err != nil {
		return fail("generate --strict: %v: %s", err, b)
	}
	res.syscalls, res.files, res.caps = bundleSize(prof)
	res.strictSyscalls, res.strictFiles, _ = bundleSize(strict)
	for i := 0; i < r.replays; i++ {
		// Each replay starts from the state learning started from, or, for a program
		// whose state outlives a run, from the state the run before it left (a restart).
		if !p.restart {
			if err := r.fresh(p, e, dirA, "A"); err != nil {
				return fail("setup: %v", err)
			}
		}
		res.replays = append(res.replays, r.phase(p, e, prof, dirA, "A", nil))
	}
	if err := r.fresh(p, e, dirB, "B"); err != nil {
		return fail("setup B: %v", err)
	}
	res.b = r.phase(p, e, prof, dirB, "B", nil)
	for _, step := range r.attacks {
		if !p.server {
			if err := r.fresh(p, e, dirA, "A"); err != nil {
				return fail("setup: %v", err)
			}
		}
		res.attacks = append(res.attacks, r.attack(p, e, prof, dirA, step))
	}
	return res
}

// learn records workload A in dir and returns the recordings.
func (r *runner) learn(p *program, e *env, dir, base string) ([]string, error) {
	if p.server {
		// A program whose state outlives a run is learned twice: started fresh, then
		// restarted over the state the first run left.
		runs := []string{"a.rec.json"}
		if p.restart {
			runs = append(runs, "a-restart.rec.json")
		}
		var recs []string
		for _, name := range runs {
			rec := filepath.Join(base, name)
			wl := fmt.Sprintf("%s workload %q A %q %d", r.self, p.name, dir, e.port)
			cmd := exec.Command(r.tailor, append([]string{"learn", "-o", rec, "--workload", wl, "--"}, p.argv(e, dir)...)...)
			cmd.Dir, cmd.Env = dir, r.baseEnv()
			if b, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%v: %s", err, tail(b))
			}
			recs = append(recs, rec)
		}
		return recs, nil
	}
	var recs []string
	for i, step := range p.steps {
		rec := filepath.Join(base, fmt.Sprintf("a%d.rec.json", i))
		cmd := exec.Command(r.tailor, append([]string{"learn", "-o", rec, "--"}, step...)...)
		cmd.Dir, cmd.Env = dir, r.baseEnv()
		if p.stdin != nil {
			cmd.Stdin = strings.NewReader(p.stdin(e, dir, "A"))
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%v: %s", err, tail(b))
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

// enforced starts `tailor enforce` on p's command (or one-shot step) in dir.
func (r *runner) enforced(argv []string, prof, dir, anomalies string, env []string, stdin string, stderr io.Writer, stdout io.Writer) *exec.Cmd {
	args := append([]string{"enforce", "--profile", prof, "--anomalies", anomalies, "--cwd", dir, "--"}, argv...)
	cmd := exec.Command(r.tailor, args...)
	cmd.Dir, cmd.Env = r.root, env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd
}

// phase runs workload phase of p under the bundle in dir.
func (r *runner) phase(p *program, e *env, prof, dir, phase string, extraEnv []string) phaseResult {
	an := filepath.Join(dir + ".anomalies-" + phase + strconv.FormatInt(time.Now().UnixNano(), 36) + ".jsonl")
	defer os.Remove(an)
	env := append(r.baseEnv(), extraEnv...)
	var res phaseResult
	if p.server {
		var stderr bytes.Buffer
		cmd := r.enforced(p.argv(e, dir), prof, dir, an, env, "", &stderr, io.Discard)
		if err := cmd.Start(); err != nil {
			return phaseResult{err: err.Error()}
		}
		werr := p.workload(e, dir, phase, "")
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		res.worked = werr == nil
		if werr != nil {
			res.err = werr.Error() + ": " + tail(stderr.Bytes())
		}
	} else {
		res.worked = true
		var last string
		for _, step := range p.steps {
			var stdout, stderr bytes.Buffer
			stdin := ""
			if p.stdin != nil {
				stdin = p.stdin(e, dir, phase)
			}
			cmd := r.enforced(step, prof, dir, an, env, stdin, &stderr, &stdout)
			if err := cmd.Run(); err != nil {
				res.worked, res.err = false, fmt.Sprintf("%s: %v: %s", strings.Join(step[1:], " "), err, tail(stderr.Bytes()))
				break
			}
			last = stdout.String()
		}
		if res.worked {
			if err := p.workload(e, dir, phase, last); err != nil {
				res.worked, res.err = false, err.Error()
			}
		}
	}
	for _, a := range readAnomalies(an) {
		res.anomalies = append(res.anomalies, a.Kind+" "+a.Detail)
		if os.Getenv("FIT_KEEP") != "" {
			fmt.Fprintf(os.Stderr, "fit: %s %s: %s %s\n", p.name, phase, a.Kind, a.Detail)
		}
	}
	return res
}

// anomaly is the part of a JSON anomaly line fit reads.
type anomaly struct {
	Kind     string `json:"kind"`
	Category string `json:"category"`
	Detail   string `json:"detail"`
	Action   string `json:"action"`
	Repeat   bool   `json:"repeat"`
}

func readAnomalies(path string) []anomaly {
	b, _ := os.ReadFile(path)
	var out []anomaly
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var a anomaly
		// The closing summary record says what was suppressed or lost: not an anomaly.
		if json.Unmarshal(sc.Bytes(), &a) == nil && !a.Repeat && a.Kind != "summary" {
			out = append(out, a)
		}
	}
	return out
}

// attack plays one step inside p confined by the bundle: flagged when an anomaly was
// reported, blocked when the step was refused (EPERM/EACCES, or EROFS from a
// container's read-only root) and an anomaly says the kernel blocked it.
func (r *runner) attack(p *program, e *env, prof, dir, step string) attackResult {
	res := attackResult{step: step, result: "not played"}
	an := filepath.Join(dir + ".attack-" + step + ".jsonl")
	defer os.Remove(an)
	steps := []string{"FIT_ATTACK=" + step, "FIT_ATTACK_COMM=" + p.comm, "FIT_PORT=" + strconv.Itoa(e.port+5)}
	pr, pw := io.Pipe()
	var cmd *exec.Cmd
	if p.container != nil {
		// Played in a container of its own, whose environment names the step: the
		// mount point and the process to trace are the container's own.
		name := r.containerName(p, "attack-"+step)
		if err := r.create(p, name, dir, append(steps, "FIT_MNT=/tmp", "FIT_VICTIM=child")); err != nil {
			res.result = err.Error()
			return res
		}
		cmd = r.enforcedContainer(name, prof, an, "", pw, io.Discard)
	} else {
		env := append(r.baseEnv(), append(steps, "FIT_MNT="+r.mnt, "FIT_VICTIM="+strconv.Itoa(r.victim.Process.Pid))...)
		// A one-shot program plays it in its first command, in a fresh directory.
		var cmdArgv []string
		if p.server {
			cmdArgv = p.argv(e, dir)
		} else {
			cmdArgv = p.steps[0]
		}
		stdin := ""
		if p.stdin != nil {
			stdin = p.stdin(e, dir, "A")
		}
		cmd = r.enforced(cmdArgv, prof, dir, an, env, stdin, pw, io.Discard)
	}
	if err := cmd.Start(); err != nil {
		res.result = err.Error()
		return res
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); !sent && len(f) == 3 && f[0] == "fit-attack" && f[1] == step {
				got <- f[2]
				sent = true
			}
		}
		if !sent {
			got <- "not played"
		}
	}()
	done := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(done) }()
	select {
	case res.result = <-got:
	case <-time.After(20 * time.Second):
	}
	// The anomaly reaches the file within a second of the step (the kernel reports a
	// key at most once a second); wait for it, or for the run to end.
	deadline := time.Now().Add(2 * time.Second)
	var as []anomaly
	for time.Now().Before(deadline) {
		if as = readAnomalies(an); len(as) > 0 {
			break
		}
		select {
		case <-done:
			deadline = time.Now() // the file is final
		case <-time.After(50 * time.Millisecond): // polling the file the watcher appends to
		}
	}
	if p.stop != nil {
		p.stop(e, dir) // the harness's SIGTERM below if it could not
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	as = readAnomalies(an)
	res.flagged = len(as) > 0
	if res.flagged {
		res.category = as[0].Category
	}
	// EROFS: a container's read-only root filesystem (the hardened run configuration).
	denied := res.result == "EPERM" || res.result == "EACCES" || res.result == "EROFS"
	res.blocked = denied && slices.ContainsFunc(as, func(a anomaly) bool { return a.Action == "blocked" })
	return res
}

// bundleSize counts the x86_64 syscalls, file rules and capabilities of a bundle.
func bundleSize(dir string) (sys, files, caps int) {
	b, err := profiles.LoadBundle(dir)
	if err != nil {
		return -1, -1, -1
	}
	for _, a := range b.Syscalls {
		if a.Arch == "SCMP_ARCH_X86_64" {
			sys = len(a.Names)
		}
	}
	return sys, len(b.Files), len(b.Capabilities)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// table renders one program's results.
func table(r *progResult) string {
	var b strings.Builder
	kind := "local command"
	if r.container {
		kind = "container"
	}
	fmt.Fprintf(&b, "### %s (%s)\n\n", r.name, kind)
	if r.setupErr != "" {
		fmt.Fprintf(&b, "FAILED before enforcing: %s\n", r.setupErr)
		return b.String()
	}
	fmt.Fprintf(&b, "| profile | syscalls | file rules | capabilities |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| generalised | %d | %d | %d |\n| --strict | %d | %d | |\n", r.syscalls, r.files, r.caps, r.strictSyscalls, r.strictFiles)
	// Docker's default: its seccomp profile's unconditional x86_64 calls, no file
	// rules of its own (every file the image holds; its AppArmor profile, where the host
	// has AppArmor, only keeps writes off /proc and /sys), its default capability set.
	fmt.Fprintf(&b, "| Docker's default | %d | none: every file | %d |\n\n",
		len(generate.DockerDefaultSyscalls("x86_64", "SCMP_ARCH_X86_64")), len(caps.DefaultCapabilities()))
	fmt.Fprintf(&b, "| phase | anomalies | worked | detail |\n|---|---|---|---|\n")
	for i, ph := range r.replays {
		fmt.Fprintf(&b, "| A replay %d | %d | %s | %s |\n", i+1, len(ph.anomalies), yes(ph.worked), detail(ph))
	}
	fmt.Fprintf(&b, "| B held out | %d | %s | %s |\n\n", len(r.b.anomalies), yes(r.b.worked), detail(r.b))
	flagged, blocked := 0, 0
	fmt.Fprintf(&b, "| attack | step got | flagged | category | blocked |\n|---|---|---|---|---|\n")
	for _, a := range r.attacks {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", a.step, a.result, yes(a.flagged), a.category, yes(a.blocked))
		if a.flagged {
			flagged++
		}
		if a.blocked {
			blocked++
		}
	}
	fmt.Fprintf(&b, "\nattacks flagged %d/%d, blocked %d/%d; false denials %d\n", flagged, len(r.attacks), blocked, len(r.attacks), r.falseDenials())
	return b.String()
}

func detail(ph phaseResult) string {
	parts := slices.Clone(ph.anomalies)
	if ph.err != "" {
		parts = append(parts, ph.err)
	}
	s := strings.Join(parts, "; ")
	s = strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
