// Command bench measures what tailor's tracer costs, side by side in one run. It needs
// root. `make bench` runs it; docs/benchmarks.md records a run.
//
// getpid: ns per getpid syscall in a tight loop (testdata/workloads/workload.c, which
// times its own loop, so process start-up is not counted), in these configurations:
//
//	untraced                 nothing attached
//	untraced, filter         under tailor's allow-all learning seccomp filter
//	empty sys_enter          an empty tp_btf sys_enter program attached
//	tailor non-target        tailor recording another process; this one unrelated
//	tailor non-target, filter  the same, the unrelated process under a seccomp filter too
//	tailor target            tailor recording this process (under its learning filter)
//	strace -f                the process under strace -f
//
// The configurations are interleaved round by round, so machine noise hits them alike,
// and the median of the rounds is reported. Ratios compare added costs: the target's
// against the learning-filter baseline, the non-target's against the untraced one, both
// divided by the empty program's added cost.
//
// Then real targets (servers.go), built by testdata/targets/build.sh: requests/s of nginx
// under wrk and ops/s of redis under redis-benchmark, untraced, while `tailor learn`
// traces them, and under `tailor enforce --anomalies` with a bundle from this run's
// learning (interleaved, median of -server-rounds, against the goals of at most 3 % and
// 5 % lower than untraced; anomaly lines counted); a file-open flood learned for
// -flood (paths opened vs recorded vs lost); tailor's peak RSS and CPU while learning;
// the generated profiles against Docker's defaults; and the time from the end of the
// workload to a written bundle. A bar chart of the overheads is written to -svg.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/internal/launch"
)

func main() {
	launch.Main()
	rounds := flag.Int("rounds", 7, "rounds of every getpid configuration (0: no getpid measurement)")
	n := flag.Int("n", 2000000, "getpid calls per measurement")
	var o serverOpts
	flag.StringVar(&o.tailor, "tailor", "bin/tailor", "the tailor binary (make build)")
	flag.IntVar(&o.rounds, "server-rounds", 3, "rounds of every server configuration (0: no servers, no soak)")
	flag.DurationVar(&o.load, "load", 3*time.Second, "wrk load per nginx measurement")
	flag.IntVar(&o.ops, "ops", 100000, "redis-benchmark requests per command per measurement")
	flag.DurationVar(&o.flood, "flood", 60*time.Second, "longest file-open flood")
	flag.IntVar(&o.floodPaths, "flood-paths", 1000000, "distinct paths the file-open flood opens (it stops earlier at -flood; 0: no flood)")
	flag.DurationVar(&o.soak, "soak", time.Minute, "length of the watch-mode memory soak (10m for the issue's goal; 0: none)")
	svg := flag.String("svg", "docs/bench-overhead.svg", "write the overhead chart to `FILE`")
	flag.Parse()
	if err := run(*rounds, *n, o, *svg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	name string
	run  func() (float64, error)
}

func run(rounds, n int, o serverOpts, svg string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (BPF): run 'sudo make bench'")
	}
	dir, err := os.MkdirTemp("", "tailor-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var bars []bar
	if rounds > 0 {
		if bars, err = getpid(rounds, n, dir); err != nil {
			return err
		}
	}
	more, err := servers(o, dir)
	if err != nil {
		return err
	}
	bars = append(bars, more...)
	if err := os.WriteFile(svg, chart(bars), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nchart: %s\n", svg)
	return nil
}

// launched runs argv through tailor's learning launcher; with a tracer it is a target.
func launched(argv []string, tr *bpf.Tracer, target uint32) (float64, error) {
	var stdout bytes.Buffer
	p, err := launch.Start("learn", launch.Payload{Argv: argv, Env: os.Environ()}, launch.Stdio{Stdout: &stdout, Stderr: os.Stderr})
	if err != nil {
		return 0, err
	}
	defer p.Cleanup()
	if tr != nil {
		if err := tr.AddProcess(target, p.Pid(), "bench"); err != nil {
			p.Wait()
			return 0, err
		}
	}
	if err := p.Release(); err != nil {
		p.Wait()
		return 0, err
	}
	st, err := p.Wait()
	if err != nil {
		return 0, err
	}
	if st != 0 {
		return 0, fmt.Errorf("workload exited %d", st)
	}
	return parse(stdout.Bytes(), nil)
}

func parse(out []byte, err error) (float64, error) {
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// getpid measures the getpid loop in every configuration and prints its tables.
func getpid(rounds, n int, dir string) ([]bar, error) {
	wl := filepath.Join(dir, "workload")
	if out, err := exec.Command("gcc", "-O2", "-o", wl, "testdata/workloads/workload.c").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the workload: %v: %s", err, out)
	}
	args := []string{wl, "getpid", strconv.Itoa(n)}

	plain := func() (float64, error) { return parse(exec.Command(args[0], args[1:]...).Output()) }
	filtered := func() (float64, error) { return launched(args, nil, 0) }
	// sampled, when set (the stats pass), receives this process's program stats
	// right after a measurement, before its programs are detached.
	var sampled func(map[string]progStat)
	sample := func() {
		if sampled != nil {
			s, err := progStats(os.Getpid())
			if err == nil {
				sampled(s)
			}
		}
	}
	emptyProgs := func(exit bool) func() (float64, error) {
		return func() (float64, error) {
			c, err := bpf.AttachEmpty(exit)
			if err != nil {
				return 0, err
			}
			defer c.Close()
			v, err := plain()
			sample()
			return v, err
		}
	}
	withTracer := func(fn func(tr *bpf.Tracer) (float64, error)) func() (float64, error) {
		return func() (float64, error) {
			tr, err := bpf.Open(bpf.Options{Logger: nil})
			if err != nil {
				return 0, err
			}
			defer tr.Close()
			go func() {
				for range tr.Events() {
				}
			}()
			v, err := fn(tr)
			sample()
			return v, err
		}
	}
	nonTarget := withTracer(func(tr *bpf.Tracer) (float64, error) {
		// Something is being recorded meanwhile: a target that just waits.
		if _, err := tr.NewTarget(); err != nil {
			return 0, err
		}
		return plain()
	})
	nonTargetFiltered := withTracer(func(tr *bpf.Tracer) (float64, error) { return launched(args, nil, 0) })
	target := withTracer(func(tr *bpf.Tracer) (float64, error) {
		id, err := tr.NewTarget()
		if err != nil {
			return 0, err
		}
		return launched(args, tr, id)
	})
	// strace costs ~20 us a call: fewer calls give the same per-call figure sooner.
	straceArgs := []string{wl, "getpid", strconv.Itoa(max(n/50, 1000))}
	straced := func() (float64, error) {
		return parse(exec.Command("strace", append([]string{"-f", "-qq", "-o", "/dev/null", "--"}, straceArgs...)...).Output())
	}

	const (
		cUntraced = iota
		cFiltered
		cEmpty
		cEmptyPair
		cNonTarget
		cNonTargetFiltered
		cTarget
		cStrace
	)
	configs := []config{
		cUntraced:          {"untraced", plain},
		cFiltered:          {"untraced, learning filter", filtered},
		cEmpty:             {"empty sys_enter program", emptyProgs(false)},
		cEmptyPair:         {"empty sys_enter + sys_exit programs", emptyProgs(true)},
		cNonTarget:         {"tailor non-target", nonTarget},
		cNonTargetFiltered: {"tailor non-target, under a filter", nonTargetFiltered},
		cTarget:            {"tailor target", target},
		cStrace:            {"strace -f", straced},
	}
	results := make([][]float64, len(configs))
	for r := 0; r < rounds; r++ {
		for i := range configs {
			c := configs[(i+r)%len(configs)] // rotate the order every round
			idx := (i + r) % len(configs)
			v, err := c.run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			results[idx] = append(results[idx], v)
		}
	}
	med := make([]float64, len(configs))
	for i := range configs {
		med[i] = median(results[i])
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "getpid loop: %d calls, %d interleaved rounds, median ns per call\n\n", n, rounds)
	fmt.Fprintf(&out, "| configuration | ns/call | added vs baseline |\n|---|---:|---:|\n")
	base := map[int]int{cFiltered: cUntraced, cEmpty: cUntraced, cEmptyPair: cUntraced, cNonTarget: cUntraced,
		cNonTargetFiltered: cFiltered, cTarget: cFiltered, cStrace: cUntraced}
	for i, c := range configs {
		add := "-"
		if b, ok := base[i]; ok {
			add = fmt.Sprintf("%+.1f", med[i]-med[b])
		}
		fmt.Fprintf(&out, "| %s | %.1f | %s |\n", c.name, med[i], add)
	}
	emptyAdded := med[cEmpty] - med[cUntraced]
	pairAdded := med[cEmptyPair] - med[cUntraced]
	targetAdded := med[cTarget] - med[cFiltered]
	nonTargetAdded := med[cNonTarget] - med[cUntraced]
	filteredAdded := med[cNonTargetFiltered] - med[cFiltered]
	fmt.Fprintf(&out, "\nratios of added cost to the empty program's (%.1f ns):\n", emptyAdded)
	fmt.Fprintf(&out, "- tailor target:      %.2fx (goal <= 1.5x)\n", ratio(targetAdded, emptyAdded))
	fmt.Fprintf(&out, "- tailor non-target:  %.2fx (goal <= 1.2x)\n", ratio(nonTargetAdded, emptyAdded))
	fmt.Fprintf(&out, "- tailor non-target under another filter (a container): %.2fx\n", ratio(filteredAdded, emptyAdded))
	fmt.Fprintf(&out, "- strace -f vs untraced: %.0fx slower per call\n", med[cStrace]/med[cUntraced])
	fmt.Fprintf(&out, "\nratios to the floor of a sys_enter + sys_exit tracer (the empty pair, %.1f ns):\n", pairAdded)
	fmt.Fprintf(&out, "- tailor target:      %.2fx\n", ratio(targetAdded, pairAdded))
	fmt.Fprintf(&out, "- tailor non-target:  %.2fx\n", ratio(nonTargetAdded, pairAdded))
	fmt.Fprintf(&out, "- tailor non-target under another filter: %.2fx\n", ratio(filteredAdded, pairAdded))

	// The stats pass: once more each configuration with programs, bpf_stats on.
	st, err := enableStats()
	if err != nil {
		return nil, err
	}
	var rows []statsRow
	for _, i := range []int{cEmpty, cEmptyPair, cNonTarget, cNonTargetFiltered, cTarget} {
		var got map[string]progStat
		sampled = func(s map[string]progStat) { got = s }
		if _, err := configs[i].run(); err != nil {
			st.Close()
			return nil, fmt.Errorf("%s (stats pass): %w", configs[i].name, err)
		}
		rows = append(rows, statsRow{configs[i].name, got})
	}
	sampled = nil
	st.Close()
	printStats(&out, fmt.Sprintf("getpid: BPF programs' own run time (bpf_stats, one more run of each configuration, %d getpid calls; every syscall of every task on the machine counts)", n), rows)
	io.Copy(os.Stdout, &out)

	var bars []bar
	for i := 1; i < len(configs); i++ {
		bars = append(bars, bar{"getpid: " + configs[i].name, (med[i] - med[0]) / med[0] * 100})
	}
	return bars, nil
}
