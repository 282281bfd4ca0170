package main

// Real targets: nginx under wrk and redis under redis-benchmark, untraced, while
// `tailor learn` traces them and confined by `tailor enforce` with the anomaly watcher
// (by the bundle of this run's own latest learning round); a file-open flood; tailor's
// own cost while learning; the generated profiles' sizes against Docker's defaults and
// the time from the end of the workload to a written bundle. Targets come from
// testdata/targets/build.sh.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/profiles"
)

const (
	nginxPort = 18180
	redisPort = 16480
)

// serverOpts are the knobs of the server measurements.
type serverOpts struct {
	tailor string
	rounds int
	load   time.Duration
	ops    int
	flood  time.Duration
	// floodPaths ends the flood after that many paths, if it comes before flood.
	floodPaths int
	// soak is the length of the watch-mode memory soak (0: none).
	soak time.Duration
}

// target is one server measured untraced, under tailor learn and under tailor enforce.
type target struct {
	name string
	// argv starts the server in the foreground.
	argv func(dir string) []string
	// workload is the shell command that loads it; it writes the load tool's output to
	// $OUT_FILE and the end time (ns since the epoch) to $END_FILE.
	workload string
	// rate parses the load tool's output into the figure reported.
	rate func(out []byte) (float64, error)
	unit string
	// stop ends an untraced server once the workload is done.
	stop syscall.Signal
}

// learnStats is what one traced run measured besides throughput.
type learnStats struct {
	rssKiB     int64
	cpu        time.Duration
	toBundle   time.Duration
	bundleDir  string
	recording  string
	lost       uint64
	fileEvents int
}

// runLearn runs argv under `tailor learn` with workload, polling tailor's peak RSS and
// CPU time from /proc while it runs, then generates the bundle. toBundle is the time
// from the workload's end (its END_FILE) to the bundle written.
func runLearn(o serverOpts, dir string, argv []string, workload string, env []string) (learnStats, error) {
	return runLearnStats(o, dir, argv, workload, env, nil)
}

// runLearnStats is runLearn; with stats set, it receives tailor's BPF program stats
// as last sampled before tailor exited.
func runLearnStats(o serverOpts, dir string, argv []string, workload string, env []string, stats *map[string]progStat) (learnStats, error) {
	st := learnStats{recording: filepath.Join(dir, "rec.json"), bundleDir: filepath.Join(dir, "bundle")}
	os.RemoveAll(st.bundleDir)
	args := []string{"learn", "--allow-loss", "-o", st.recording}
	if workload != "" {
		args = append(args, "--workload", workload)
	}
	args = append(append(args, "--"), argv...)
	cmd := exec.Command(o.tailor, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return st, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var poller *statsPoller
	if stats != nil {
		poller = pollStats(cmd.Process.Pid, 50*time.Millisecond)
	}
	// A sample every 20 ms; VmHWM is a high-water mark, so only the CPU sample can
	// miss the last few ms of work (the recording's write).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
poll:
	for {
		if rss, cpu, ok := procStats(cmd.Process.Pid); ok {
			st.rssKiB, st.cpu = rss, cpu
		}
		select {
		case err = <-done:
			break poll
		case <-tick.C:
		}
	}
	if poller != nil {
		*stats = poller.finish(0)
	}
	if err != nil {
		return st, fmt.Errorf("tailor learn: %v: %s", err, stderr.String())
	}
	if out, err := exec.Command(o.tailor, "generate", "-o", st.bundleDir, st.recording).CombinedOutput(); err != nil {
		return st, fmt.Errorf("tailor generate: %v: %s", err, out)
	}
	written := time.Now()
	if end, err := readEnd(dir); err == nil {
		st.toBundle = written.Sub(end)
	} else {
		return st, err
	}
	rec, err := profiles.LoadRecording(st.recording)
	if err != nil {
		return st, err
	}
	st.lost = rec.Loss.Total()
	st.fileEvents = len(rec.Files)
	return st, nil
}

// procStats reads a process's peak RSS (VmHWM, KiB) and its own user+system CPU time.
func procStats(pid int) (int64, time.Duration, bool) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if m == nil || err != nil {
		return 0, 0, false
	}
	// Fields after the parenthesised comm: utime and stime are the 12th and 13th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	rss, _ := strconv.ParseInt(string(m[1]), 10, 64)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux architecture tailor supports.
	return rss, time.Duration(ut+stt) * 10 * time.Millisecond, true
}

func readEnd(dir string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(dir, "end"))
	if err != nil {
		return time.Time{}, fmt.Errorf("the workload wrote no end time: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Unix(0, ns), err
}

// runUntraced starts argv, runs workload, then stops the server with t.stop.
func runUntraced(argv []string, workload string, env []string, stop syscall.Signal) error {
	srv := exec.Command(argv[0], argv[1:]...)
	if err := srv.Start(); err != nil {
		return err
	}
	wl := exec.Command("sh", "-c", workload)
	wl.Env = append(os.Environ(), env...)
	out, werr := wl.CombinedOutput()
	_ = srv.Process.Signal(stop)
	_ = srv.Wait()
	if werr != nil {
		return fmt.Errorf("workload: %v: %s", werr, out)
	}
	return nil
}

// readiness is a shell loop that waits (bounded) until cmd succeeds.
func readiness(cmd string) string {
	return fmt.Sprintf(`i=0; until %s >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.1; done; `, cmd)
}

func targetsFor(o serverOpts, targets string) []target {
	nginx := target{
		name: "nginx", unit: "requests/s", stop: syscall.SIGQUIT,
		argv: func(dir string) []string {
			return []string{"nginx", "-p", dir + "/", "-c", "nginx.conf", "-e", "logs/error.log"}
		},
		workload: readiness(fmt.Sprintf("curl -sf -o /dev/null http://127.0.0.1:%d/", nginxPort)) +
			fmt.Sprintf(`wrk -t2 -c8 -d%ds http://127.0.0.1:%d/ > "$OUT_FILE"; date +%%s%%N > "$END_FILE"`, int(o.load.Seconds()), nginxPort),
		rate: func(out []byte) (float64, error) {
			if bytes.Contains(out, []byte("Socket errors")) || bytes.Contains(out, []byte("Non-2xx")) {
				return 0, fmt.Errorf("wrk saw errors: %s", out)
			}
			m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindSubmatch(out)
			if m == nil {
				return 0, fmt.Errorf("no Requests/sec in wrk's output: %s", out)
			}
			return strconv.ParseFloat(string(m[1]), 64)
		},
	}
	redis := target{
		name: "redis", unit: "ops/s (SET+GET)", stop: syscall.SIGTERM,
		argv: func(dir string) []string {
			return []string{"redis-server", filepath.Join(targets, "redis.conf"), "--port", strconv.Itoa(redisPort), "--dir", dir}
		},
		workload: readiness(fmt.Sprintf("redis-cli -p %d ping | grep -q PONG", redisPort)) +
			fmt.Sprintf(`redis-benchmark --csv -p %d -c 10 -n %d -t set,get > "$OUT_FILE"; date +%%s%%N > "$END_FILE"`, redisPort, o.ops),
		rate: func(out []byte) (float64, error) {
			rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
			if err != nil || len(rows) < 3 {
				return 0, fmt.Errorf("unexpected redis-benchmark output: %s", out)
			}
			// Both commands ran the same number of requests: total over total time.
			var inv float64
			for _, r := range rows[1:] {
				v, err := strconv.ParseFloat(r[1], 64)
				if err != nil || v == 0 {
					return 0, fmt.Errorf("unexpected redis-benchmark row %v", r)
				}
				inv += 1 / v
			}
			return float64(len(rows)-1) / inv, nil
		},
	}
	return []target{nginx, redis}
}

// prepareDir makes a fresh working directory for one run of t: nginx gets its prefix.
func prepareDir(base, name, targets string) (string, error) {
	dir := filepath.Join(base, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	if name == "nginx" {
		if out, err := exec.Command("cp", "-r", filepath.Join(targets, "www"), filepath.Join(dir, "www")).CombinedOutput(); err != nil {
			return "", fmt.Errorf("copying the document root: %v: %s", err, out)
		}
		conf, err := os.ReadFile(filepath.Join(targets, "nginx.conf.in"))
		if err != nil {
			return "", err
		}
		conf = bytes.ReplaceAll(conf, []byte("@PORT@"), []byte(strconv.Itoa(nginxPort)))
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), conf, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// serverResult is the figures of one target.
type serverResult struct {
	t target
	// rates holds each configuration's figures, by serverConfig.
	rates    map[serverConfig][]float64
	failures map[serverConfig][]string
	// stats holds tailor's BPF program stats per configuration (the stats round).
	stats    map[serverConfig]map[string]progStat
	last     learnStats
	rss      []int64
	cpu      []time.Duration
	toBundle []time.Duration
	profile  profileSize
	// bundle is a copy of the latest learning round's bundle, the profile every
	// later enforced run of this target is confined by.
	bundle string
	// anomalyLines counts the lines each enforced run wrote to its anomalies file;
	// anomalies keeps the distinct ones ("kind rule: detail" -> runs that saw it).
	anomalyLines []int
	anomalies    map[string]int
}

// serverConfig is one way a server is run in a round.
type serverConfig int

const (
	untraced serverConfig = iota
	learning
	// The parts of enforcement alone (tailor enforce --parts), then all of them with
	// the watcher, as a user runs it.
	seccompOnly
	landlockOnly
	watcherOnly
	enforced
	// The seccomp filters alone, tailor's seccomp.json against Docker's default
	// profile, both compiled by libseccomp through the same launcher.
	launchTailor
	launchDocker
	nConfigs
)

var configNames = [nConfigs]string{
	untraced:     "untraced",
	learning:     "tailor learn",
	seccompOnly:  "enforce: seccomp + caps only",
	landlockOnly: "enforce: Landlock only",
	watcherOnly:  "enforce: watcher only (allow-all filter)",
	enforced:     "enforced + watcher (all)",
	launchTailor: "filter only: tailor's seccomp.json",
	launchDocker: "filter only: Docker's default",
}

// enforceRun is what one run under `tailor enforce --anomalies` left behind.
type enforceRun struct {
	lines    int
	distinct []string
}

// runEnforced runs argv under `tailor enforce --profile bundle --anomalies` with the
// tracer watching, runs workload against it, then stops it with SIGTERM to tailor,
// which passes it on: the signal `tailor learn` stopped the learned server with, so
// the shutdown is one the profile has seen.
func runEnforced(o serverOpts, dir, bundle string, argv []string, workload string, env []string, parts string, watched bool, stats *map[string]progStat) (enforceRun, error) {
	var r enforceRun
	anomalies := filepath.Join(dir, "anomalies.jsonl")
	args := []string{"enforce", "--profile", bundle}
	if parts != "" {
		args = append(args, "--parts", parts)
	}
	if watched {
		args = append(args, "--anomalies", anomalies)
	}
	args = append(append(args, "--"), argv...)
	srv := exec.Command(o.tailor, args...)
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		return r, err
	}
	wl := exec.Command("sh", "-c", workload)
	wl.Env = append(os.Environ(), env...)
	out, werr := wl.CombinedOutput()
	if stats != nil {
		*stats, _ = progStats(srv.Process.Pid)
	}
	_ = srv.Process.Signal(syscall.SIGTERM)
	serr := srv.Wait()
	// tailor exits 130 when a signal ended the run (docs/exit-codes.md): the SIGTERM
	// just sent, so not a failure.
	var ee *exec.ExitError
	if errors.As(serr, &ee) && ee.ExitCode() == 130 {
		serr = nil
	}
	if !watched {
		if werr != nil {
			return r, fmt.Errorf("workload: %v: %s; tailor enforce's output: %s", werr, out, log.String())
		}
		if serr != nil {
			return r, fmt.Errorf("tailor enforce: %v: %s", serr, log.String())
		}
		return r, nil
	}
	// The anomalies are counted whether or not the run completed: a server the
	// profile broke is where they matter most.
	b, err := os.ReadFile(anomalies)
	if err != nil {
		return r, fmt.Errorf("tailor enforce wrote no anomalies file: %w; its output: %s", err, log.String())
	}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var a watch.Anomaly
		if err := json.Unmarshal(line, &a); err != nil {
			return r, fmt.Errorf("%s: %w", anomalies, err)
		}
		if a.Kind == "summary" {
			continue // what was suppressed or lost, not an anomaly
		}
		r.lines++
		if !a.Repeat {
			r.distinct = append(r.distinct, fmt.Sprintf("%s %s (%s, %s): %s", a.Kind, a.Action, a.Comm, a.Rule, a.Detail))
		}
	}
	if werr != nil {
		return r, fmt.Errorf("workload: %v: %s; tailor enforce's output: %s", werr, out, log.String())
	}
	if serr != nil {
		return r, fmt.Errorf("tailor enforce: %v: %s", serr, log.String())
	}
	return r, nil
}

// measureServers runs every target in every configuration, rounds times, the
// configurations and targets interleaved and rotated round by round. Each target's
// learning step comes before the steps that need its bundle in the first round. A last
// round, not counted in the figures, runs the configurations with BPF programs with
// bpf_stats on and keeps tailor's per-program stats.
func measureServers(o serverOpts, base, targets string) ([]*serverResult, error) {
	docker, err := dockerDefault()
	if err != nil {
		return nil, err
	}
	var results []*serverResult
	for _, t := range targetsFor(o, targets) {
		results = append(results, &serverResult{t: t, anomalies: map[string]int{}, rates: map[serverConfig][]float64{},
			failures: map[serverConfig][]string{}, stats: map[serverConfig]map[string]progStat{}})
	}
	type step struct {
		r *serverResult
		c serverConfig
	}
	var steps []step
	for _, r := range results {
		for c := untraced; c < nConfigs; c++ {
			steps = append(steps, step{r, c})
		}
	}
	// The bundles come from learning: every target's learning step comes first in
	// round 1 (later rounds rotate, and the bundles exist by then).
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].c == learning && steps[j].c != learning })
	run := func(s step, round int, stats bool) error {
		dir, err := prepareDir(base, s.r.t.name, targets)
		if err != nil {
			return err
		}
		outFile := filepath.Join(dir, "load.out")
		env := []string{"OUT_FILE=" + outFile, "END_FILE=" + filepath.Join(dir, "end")}
		argv := s.r.t.argv(dir)
		var ps map[string]progStat
		var sp *map[string]progStat
		if stats {
			sp = &ps
		}
		switch s.c {
		case learning:
			st, err := runLearnStats(o, dir, argv, s.r.t.workload, env, sp)
			if err != nil {
				return fmt.Errorf("%s under learn: %w", s.r.t.name, err)
			}
			if stats {
				s.r.stats[s.c] = ps
				return nil
			}
			s.r.last = st
			s.r.rss = append(s.r.rss, st.rssKiB)
			s.r.cpu = append(s.r.cpu, st.cpu)
			s.r.toBundle = append(s.r.toBundle, st.toBundle)
			if s.r.profile, err = readProfile(st.bundleDir); err != nil {
				return err
			}
			// prepareDir removes the run directory; the bundle must outlive it.
			s.r.bundle = filepath.Join(base, "bundles", s.r.t.name)
			if err := os.RemoveAll(s.r.bundle); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(s.r.bundle), 0o755); err != nil {
				return err
			}
			if out, err := exec.Command("cp", "-r", st.bundleDir, s.r.bundle).CombinedOutput(); err != nil {
				return fmt.Errorf("keeping the bundle: %v: %s", err, out)
			}
		case seccompOnly, landlockOnly, watcherOnly, enforced:
			if s.r.bundle == "" {
				return fmt.Errorf("%s: an enforced run came before any learning run", s.r.t.name)
			}
			parts := map[serverConfig]string{seccompOnly: "seccomp", landlockOnly: "landlock", watcherOnly: "watcher"}[s.c]
			watched := s.c == watcherOnly || s.c == enforced
			er, err := runEnforced(o, dir, s.r.bundle, argv, s.r.t.workload, env, parts, watched, sp)
			if stats {
				s.r.stats[s.c] = ps
				return nil
			}
			if s.c == enforced {
				s.r.anomalyLines = append(s.r.anomalyLines, er.lines)
				for _, d := range er.distinct {
					s.r.anomalies[d]++
				}
			}
			if err != nil {
				// Reported with the figures, not fatal: the other configurations
				// still measure, and a server the profile breaks is a finding.
				s.r.failures[s.c] = append(s.r.failures[s.c], fmt.Sprintf("round %d: %v", round+1, err))
				return nil
			}
		case launchTailor, launchDocker:
			if s.r.bundle == "" {
				return fmt.Errorf("%s: a filtered run came before any learning run", s.r.t.name)
			}
			profile := docker
			if s.c == launchTailor {
				if profile, err = os.ReadFile(filepath.Join(s.r.bundle, profiles.BundleSeccompFile)); err != nil {
					return err
				}
			}
			if err := runFiltered(argv, s.r.t.workload, env, s.r.t.stop, profile); err != nil {
				s.r.failures[s.c] = append(s.r.failures[s.c], fmt.Sprintf("round %d: %v", round+1, err))
				return nil
			}
		default:
			if err := runUntraced(argv, s.r.t.workload, env, s.r.t.stop); err != nil {
				return fmt.Errorf("%s untraced: %w", s.r.t.name, err)
			}
		}
		out, err := os.ReadFile(outFile)
		if err != nil {
			return err
		}
		v, err := s.r.t.rate(out)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", s.r.t.name, configNames[s.c], err)
		}
		s.r.rates[s.c] = append(s.r.rates[s.c], v)
		return nil
	}
	for round := 0; round < o.rounds; round++ {
		for i := range steps {
			if err := run(steps[(i+round)%len(steps)], round, false); err != nil {
				return nil, err
			}
		}
	}
	st, err := enableStats()
	if err != nil {
		return nil, err
	}
	defer st.Close()
	for _, s := range steps {
		if s.c == learning || s.c == watcherOnly || s.c == enforced {
			if err := run(s, o.rounds, true); err != nil {
				return nil, fmt.Errorf("stats round: %w", err)
			}
		}
	}
	return results, nil
}

// profileSize is what a generated bundle allows, next to Docker's defaults as
// SUMMARY.txt states them (generate computes Docker's figures from moby's default
// profile and capability set).
type profileSize struct {
	syscalls, dockerSyscalls int
	caps, dockerCaps         int
	apparmorRules            int
}

func readProfile(dir string) (profileSize, error) {
	var p profileSize
	summary, err := os.ReadFile(filepath.Join(dir, "SUMMARY.txt"))
	if err != nil {
		return p, err
	}
	sc := regexp.MustCompile(`seccomp SCMP_ARCH_X86_64: (\d+) syscalls allowed, Docker default allows (\d+)`).FindSubmatch(summary)
	cp := regexp.MustCompile(`capabilities: (\d+) added after dropping all, Docker default keeps (\d+)`).FindSubmatch(summary)
	if sc == nil || cp == nil {
		return p, fmt.Errorf("%s/SUMMARY.txt: no syscall or capability line", dir)
	}
	p.syscalls, _ = strconv.Atoi(string(sc[1]))
	p.dockerSyscalls, _ = strconv.Atoi(string(sc[2]))
	p.caps, _ = strconv.Atoi(string(cp[1]))
	p.dockerCaps, _ = strconv.Atoi(string(cp[2]))
	aa, err := os.ReadFile(filepath.Join(dir, "apparmor.profile"))
	if err != nil {
		return p, err
	}
	// A rule is a line ending in a comma (file, capability, network, exec rules...).
	for _, line := range strings.Split(string(aa), "\n") {
		if l := strings.TrimSpace(line); strings.HasSuffix(l, ",") && !strings.HasPrefix(l, "#") {
			p.apparmorRules++
		}
	}
	return p, nil
}

// floodResult is the file-open flood under learn.
type floodResult struct {
	opened int
	// entries are the recording's entries for files of the flood directory; merged
	// the observations its collapsed entry stands for (learn.CollapseAt).
	entries   int
	merged    uint64
	collapsed bool
	lost      uint64
	rssKiB    int64
	cpu       time.Duration
	took      time.Duration
}

// measureFlood learns the open flood for o.flood and compares the paths it opened with
// those the recording has and the observations it lost.
func measureFlood(o serverOpts, base string) (floodResult, error) {
	var r floodResult
	bin := filepath.Join(base, "openflood")
	if out, err := exec.Command("gcc", "-O2", "-o", bin, "testdata/targets/openflood.c").CombinedOutput(); err != nil {
		return r, fmt.Errorf("building openflood: %v: %s", err, out)
	}
	// On tmpfs when there is one: a disk file system's create+unlink cost (and its
	// noise on a shared machine) would bound the flood instead of the tracer.
	dir, err := os.MkdirTemp("/dev/shm", "tailor-flood-")
	if err != nil {
		dir = filepath.Join(base, "flood")
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		return r, err
	}
	// The flood is the target itself: its stdout (the count) goes through a shell.
	countFile := filepath.Join(dir, "count")
	argv := []string{"sh", "-c", fmt.Sprintf(`%s %s %d %d > %s; date +%%s%%N > %s`, bin, filepath.Join(dir, "files"), int(o.flood.Seconds()), o.floodPaths, countFile, filepath.Join(dir, "end"))}
	start := time.Now()
	st, err := runLearn(o, dir, argv, "", nil)
	r.took = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("flood under learn: %w", err)
	}
	b, err := os.ReadFile(countFile)
	if err != nil {
		return r, err
	}
	r.opened, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return r, err
	}
	rec, err := profiles.LoadRecording(st.recording)
	if err != nil {
		return r, err
	}
	files := filepath.Join(dir, "files")
	for _, f := range rec.Files {
		switch {
		case f.Collapsed > 0 && f.Path == files:
			r.collapsed, r.merged = true, f.Collapsed
		case strings.HasPrefix(f.Path, files+"/"):
			r.entries++
		}
	}
	r.lost, r.rssKiB, r.cpu = st.lost, st.rssKiB, st.cpu
	return r, nil
}

// servers measures the real targets and prints their tables; it returns their chart bars.
func servers(o serverOpts, base string) ([]bar, error) {
	out, err := exec.Command("testdata/targets/build.sh").Output()
	if err != nil {
		return nil, fmt.Errorf("testdata/targets/build.sh: %w", err)
	}
	m := regexp.MustCompile(`(?m)^TARGETS=(.+)$`).FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("testdata/targets/build.sh printed no TARGETS: %s", out)
	}
	targets := string(m[1])
	// nginx's www-data workers must reach the prefix; the bench directory is private.
	if err := os.Chmod(base, 0o755); err != nil {
		return nil, err
	}
	var results []*serverResult
	if o.rounds > 0 {
		if results, err = measureServers(o, base, targets); err != nil {
			return nil, err
		}
	}
	var flood floodResult
	if o.floodPaths > 0 {
		if flood, err = measureFlood(o, base); err != nil {
			return nil, err
		}
	}
	var soak *soakResult
	if o.soak > 0 && len(results) > 0 && results[0].bundle != "" {
		s := measureSoak(o, base, targets, results[0])
		soak = &s
	}

	var bars []bar
	fmt.Printf("\nservers: %d interleaved rounds, median (wrk -t2 -c8 for %v; redis-benchmark -c 10 -n %d -t set,get)\n", o.rounds, o.load, o.ops)
	fmt.Printf("goals: tailor learn at most %.0f%% lower than untraced, enforced + watcher at most %.0f%% lower\n\n", learnGoal, enforceGoal)
	fmt.Printf("| target | untraced | tailor learn | overhead | goal <= %.0f%% | enforced + watcher | overhead | goal <= %.0f%% | anomaly lines |\n", learnGoal, enforceGoal)
	fmt.Printf("|---|---:|---:|---:|---|---:|---:|---|---:|\n")
	for _, r := range results {
		u, l := median(r.rates[untraced]), median(r.rates[learning])
		lo := (u - l) / u * 100
		bars = append(bars, bar{r.t.name + ": tailor learn (throughput lost)", lo})
		watched, wo, wgoal := "failed", "-", "not measured"
		if e := r.rates[enforced]; len(e) > 0 {
			eo := (u - median(e)) / u * 100
			watched, wo, wgoal = fmt.Sprintf("%.0f", median(e)), fmt.Sprintf("%.1f%%", eo), met(eo, enforceGoal)
			bars = append(bars, bar{r.t.name + ": enforced + watcher (throughput lost)", eo})
		}
		if n := len(r.failures[enforced]); n > 0 {
			watched += fmt.Sprintf(" (%d of %d runs failed)", n, n+len(r.rates[enforced]))
		}
		fmt.Printf("| %s %s | %.0f | %.0f | %.1f%% | %s | %s | %s | %s | %s |\n", r.t.name, r.t.unit, u, l, lo, met(lo, learnGoal), watched, wo, wgoal, joinInts(r.anomalyLines))
	}

	fmt.Printf("\nwhat each part of enforcement costs (same rounds, median; overhead against untraced)\n\n")
	fmt.Printf("| target | configuration | median | overhead | runs failed |\n|---|---|---:|---:|---:|\n")
	for _, r := range results {
		u := median(r.rates[untraced])
		for c := untraced; c < nConfigs; c++ {
			v, fig, over := r.rates[c], "failed", "-"
			if len(v) > 0 {
				fig = fmt.Sprintf("%.0f", median(v))
				over = fmt.Sprintf("%.1f%%", (u-median(v))/u*100)
			}
			fmt.Printf("| %s | %s | %s | %s | %d |\n", r.t.name, configNames[c], fig, over, len(r.failures[c]))
			if len(v) > 0 && (c == seccompOnly || c == landlockOnly || c == watcherOnly) {
				bars = append(bars, bar{r.t.name + ": " + configNames[c], (u - median(v)) / u * 100})
			}
		}
	}

	fmt.Printf("\nseccomp filter alone: tailor's learned profile against Docker's default (goal: tailor no slower)\n\n")
	fmt.Printf("| target | tailor's seccomp.json | Docker's default | tailor vs Docker | goal |\n|---|---:|---:|---:|---|\n")
	for _, r := range results {
		t, d := r.rates[launchTailor], r.rates[launchDocker]
		if len(t) == 0 || len(d) == 0 {
			fmt.Printf("| %s | %d runs | %d runs | - | not measured |\n", r.t.name, len(t), len(d))
			continue
		}
		diff := (median(t) - median(d)) / median(d) * 100
		goal := "met"
		if diff < 0 {
			goal = "missed"
		}
		fmt.Printf("| %s %s | %.0f | %.0f | %+.1f%% | %s |\n", r.t.name, r.t.unit, median(t), median(d), diff, goal)
		u := median(r.rates[untraced])
		bars = append(bars, bar{r.t.name + ": Docker default filter (throughput lost)", (u - median(d)) / u * 100},
			bar{r.t.name + ": tailor's filter (throughput lost)", (u - median(t)) / u * 100})
	}

	for _, r := range results {
		var rows []statsRow
		for _, c := range []serverConfig{learning, watcherOnly, enforced} {
			rows = append(rows, statsRow{configNames[c], r.stats[c]})
		}
		printStats(os.Stdout, fmt.Sprintf("%s: tailor's BPF programs (bpf_stats, one more run of each configuration with programs; runs are every task's on the machine)", r.t.name), rows)
	}

	for _, r := range results {
		keys := make([]string, 0, len(r.anomalies))
		for k := range r.anomalies {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			fmt.Printf("\n%s: distinct anomalies under enforce (runs that raised each)\n", r.t.name)
		}
		for _, k := range keys {
			fmt.Printf("- %s [%d]\n", k, r.anomalies[k])
		}
		for c := untraced; c < nConfigs; c++ {
			for _, f := range r.failures[c] {
				fmt.Printf("\n%s (%s) failed: %s\n", r.t.name, configNames[c], f)
			}
		}
	}
	fmt.Printf("\ntailor while learning (median over the rounds; CPU is tailor's own, not the target's)\n\n")
	fmt.Printf("| target | peak RSS (VmHWM) | goal | CPU (utime+stime) | end of workload -> bundle written |\n|---|---:|---|---:|---:|\n")
	for _, r := range results {
		rss := float64(medianInt(r.rss)) / 1024
		goal := "-"
		if r.t.name == "nginx" {
			goal = "<= 48 MiB: " + met(rss, 48)
		}
		fmt.Printf("| %s | %.1f MiB | %s | %v | %v |\n", r.t.name, rss, goal, medianDur(r.cpu), medianDur(r.toBundle).Round(time.Millisecond))
	}
	if o.floodPaths > 0 {
		fmt.Printf("| open flood (%d paths) | %.1f MiB | <= 64 MiB: %s | %v | - |\n", flood.opened, float64(flood.rssKiB)/1024, met(float64(flood.rssKiB)/1024, 64), flood.cpu)
		// Each path of the flood is two observations: its open (a create) and its unlink.
		accounted := float64(flood.entries) + float64(flood.merged)/2
		fmt.Printf("\nfile-open flood: %d distinct paths opened under learn (at most %d paths or %v; took %v with learn's start and end)\n",
			flood.opened, o.floodPaths, o.flood, flood.took.Round(time.Millisecond))
		fmt.Printf("recording: %d file entries in the flood directory, collapsed entry: %v with %d observations merged (2 per path: open and unlink) = %.0f paths accounted for; %d observations lost (recording's loss section); peak RSS goal <= 64 MiB: %s\n",
			flood.entries, flood.collapsed, flood.merged, accounted, flood.lost, met(float64(flood.rssKiB)/1024, 64))
	}
	if soak != nil {
		soak.print()
	}
	fmt.Printf("\nprofiles (last learning round) against Docker's defaults\n\n")
	fmt.Printf("| target | syscalls (x86_64) | Docker default | capabilities | Docker default | AppArmor rules |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		p := r.profile
		fmt.Printf("| %s | %d | %d | %d | %d | %d |\n", r.t.name, p.syscalls, p.dockerSyscalls, p.caps, p.dockerCaps, p.apparmorRules)
	}
	return bars, nil
}

// The goals: throughput lost against untraced, in percent.
const (
	learnGoal   = 3.0
	enforceGoal = 5.0
)

// met says whether an overhead met its goal; a miss is reported, never fatal, since
// a shared machine's clock decides it as much as tailor does.
func met(overhead, goal float64) string {
	if overhead <= goal {
		return "met"
	}
	return "missed"
}

// joinInts prints one figure per run, in run order: "0 0 2".
func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, " ")
}

func medianInt(v []int64) int64 {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return int64(median(f))
}

func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return time.Duration(median(f))
}

// soakResult is tailor's memory over a long enforced run of nginx with the watcher.
type soakResult struct {
	length          time.Duration
	samples         int
	firstKiB, last  int64 // VmRSS after the warm-up and at the end
	minKiB, peakKiB int64 // after the warm-up
	requests        float64
	err             error
}

// measureSoak runs nginx under `tailor enforce --anomalies` with wrk for o.soak,
// sampling tailor's VmRSS every second. The first tenth is the warm-up (the tracer's
// maps and the Go heap settle); "flat" compares the end with the first sample after it.
func measureSoak(o serverOpts, base, targets string, r *serverResult) soakResult {
	res := soakResult{length: o.soak}
	dir, err := prepareDir(base, r.t.name, targets)
	if err != nil {
		res.err = err
		return res
	}
	anomalies := filepath.Join(dir, "anomalies.jsonl")
	args := append([]string{"enforce", "--profile", r.bundle, "--anomalies", anomalies, "--"}, r.t.argv(dir)...)
	srv := exec.Command(o.tailor, args...)
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		res.err = err
		return res
	}
	wl := exec.Command("sh", "-c", readiness(fmt.Sprintf("curl -sf -o /dev/null http://127.0.0.1:%d/", nginxPort))+
		fmt.Sprintf(`wrk -t2 -c8 -d%ds http://127.0.0.1:%d/`, int(o.soak.Seconds()), nginxPort))
	var out bytes.Buffer
	wl.Stdout, wl.Stderr = &out, &out
	start := time.Now()
	if err := wl.Start(); err != nil {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
		res.err = err
		return res
	}
	done := make(chan error, 1)
	go func() { done <- wl.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	warm := o.soak / 10
	var werr error
loop:
	for {
		select {
		case werr = <-done:
			break loop
		case <-tick.C:
			rss, ok := vmRSS(srv.Process.Pid)
			if !ok || time.Since(start) < warm {
				continue
			}
			if res.samples == 0 {
				res.firstKiB, res.minKiB = rss, rss
			}
			res.samples++
			res.last = rss
			res.minKiB = min(res.minKiB, rss)
			res.peakKiB = max(res.peakKiB, rss)
		}
	}
	_ = srv.Process.Signal(syscall.SIGTERM)
	serr := srv.Wait()
	var ee *exec.ExitError
	if errors.As(serr, &ee) && ee.ExitCode() == 130 {
		serr = nil // the SIGTERM just sent (docs/exit-codes.md)
	}
	switch {
	case werr != nil:
		res.err = fmt.Errorf("wrk: %v: %s", werr, out.String())
	case serr != nil:
		res.err = fmt.Errorf("tailor enforce: %v: %s", serr, log.String())
	default:
		res.requests, res.err = r.t.rate(out.Bytes())
	}
	return res
}

func vmRSS(pid int) (int64, bool) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(string(m[1]), 10, 64)
	return v, err == nil
}

func (s soakResult) print() {
	fmt.Printf("\nwatch soak: nginx under tailor enforce --anomalies with wrk -t2 -c8 for %v; tailor's VmRSS sampled every second after a %v warm-up\n", s.length, s.length/10)
	if s.err != nil {
		fmt.Printf("failed: %v\n", s.err)
		return
	}
	if s.samples == 0 {
		fmt.Printf("no sample taken\n")
		return
	}
	change := float64(s.last-s.firstKiB) / float64(s.firstKiB) * 100
	// Growth is what a leak shows: the end against the lowest sample after the warm-up.
	// A fall (the Go runtime returning its start-up heap) is no growth.
	growth := float64(s.last-s.minKiB) / float64(s.minKiB) * 100
	fmt.Printf("| samples | first | last | min | peak | last vs first | last vs min (growth) | goal: growth within 5%% | requests/s |\n|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	fmt.Printf("| %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %+.1f%% | %+.1f%% | %s | %.0f |\n", s.samples,
		float64(s.firstKiB)/1024, float64(s.last)/1024, float64(s.minKiB)/1024, float64(s.peakKiB)/1024, change, growth, met(growth, 5), s.requests)
}
