package main

// Where the time goes: the kernel's own run time and run count of each BPF program a
// process holds (bpf_stats, enabled through BPF_ENABLE_STATS only for the passes that
// read them, since the accounting itself adds two clock reads to every run), read
// from the program info as cilium/ebpf's Program.Stats gives it. The programs are
// found through the process's descriptors, so another engineer's tracer on the same
// machine is never counted.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progStat is one program's accumulated runs.
type progStat struct {
	name    string
	runs    uint64
	runtime time.Duration
}

func (p progStat) avg() float64 {
	if p.runs == 0 {
		return 0
	}
	return float64(p.runtime.Nanoseconds()) / float64(p.runs)
}

// enableStats turns the kernel's BPF run-time accounting on until Close.
func enableStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enabling bpf_stats: %w", err)
	}
	return c, nil
}

// progStats reads the stats of every BPF program process pid holds a descriptor of,
// by program name (programs of the same name are summed).
func progStats(pid int) (map[string]progStat, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]progStat{}
	seen := map[uint64]bool{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || link != "anon_inode:bpf-prog" {
			continue
		}
		id, ok := fdinfoProgID(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			continue // closed meanwhile
		}
		info, ierr := p.Info()
		st, serr := p.Stats()
		p.Close()
		if ierr != nil || serr != nil {
			continue
		}
		s := out[info.Name]
		s.name = info.Name
		s.runs += st.RunCount
		s.runtime += st.Runtime
		out[info.Name] = s
	}
	return out, nil
}

func fdinfoProgID(path string) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "prog_id:"); ok {
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return id, err == nil
		}
	}
	return 0, false
}

// statsPoller samples a process's program stats until stop, keeping the last sample:
// the programs go away with the process, so the last sample before its end is the
// figure (it misses at most one interval of runs).
type statsPoller struct {
	last map[string]progStat
	stop chan struct{}
	done chan struct{}
}

func pollStats(pid int, every time.Duration) *statsPoller {
	p := &statsPoller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if s, err := progStats(pid); err == nil && len(s) > 0 {
				p.last = s
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// sample takes one more sample now (the process still running), then stops polling.
func (p *statsPoller) finish(pid int) map[string]progStat {
	close(p.stop)
	<-p.done
	if pid > 0 {
		if s, err := progStats(pid); err == nil && len(s) > 0 {
			p.last = s
		}
	}
	return p.last
}

// statsRow is one configuration's programs, for the table.
type statsRow struct {
	config string
	progs  map[string]progStat
}

// printStats prints the per-program table: runs, average and total run time.
func printStats(w io.Writer, title string, rows []statsRow) {
	fmt.Fprintf(w, "\n%s\n\n| configuration | program | runs | avg ns/run | total ms |\n|---|---|---:|---:|---:|\n", title)
	for _, r := range rows {
		names := make([]string, 0, len(r.progs))
		for n := range r.progs {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			fmt.Fprintf(w, "| %s | (no program sampled) | - | - | - |\n", r.config)
		}
		for _, n := range names {
			s := r.progs[n]
			if s.runs == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %d | %.1f | %.1f |\n", r.config, n, s.runs, s.avg(), float64(s.runtime.Microseconds())/1000)
		}
	}
}
