package main

import (
	"bytes"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
)

// chart draws, per program, the attacks flagged and blocked of those played and the
// false denials, as horizontal bars in SVG.
func chart(rep *report) []byte {
	const labelW, barW, rowH, top = 170, 320, 22, 56
	w := labelW + barW + 260
	h := top + rowH*3*len(rep.programs) + 30
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">make fit: attack steps flagged and blocked, false denials (A replays and B), per program</text>`+"\n")
	legend := []struct{ color, text string }{{"#3b8c3b", "attacks flagged"}, {"#3b62a8", "attacks blocked"}, {"#c0392b", "false denials"}}
	for i, l := range legend {
		x := 10 + i*170
		fmt.Fprintf(&b, `<rect x="%d" y="30" width="12" height="12" fill="%s"/><text x="%d" y="41">%s</text>`+"\n", x, l.color, x+18, l.text)
	}
	y := top
	for _, r := range rep.programs {
		n := len(r.attacks)
		flagged, blocked := 0, 0
		for _, a := range r.attacks {
			if a.flagged {
				flagged++
			}
			if a.blocked {
				blocked++
			}
		}
		fd := r.falseDenials()
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+rowH+4, html.EscapeString(r.name))
		rows := []struct {
			color string
			v, of int
			text  string
		}{
			{"#3b8c3b", flagged, n, fmt.Sprintf("%d/%d flagged", flagged, n)},
			{"#3b62a8", blocked, n, fmt.Sprintf("%d/%d blocked", blocked, n)},
			{"#c0392b", fd, max(n, fd), fmt.Sprintf("%d false denials", fd)},
		}
		if r.setupErr != "" {
			rows[2].text = "did not run: " + truncate(r.setupErr)
		}
		for _, row := range rows {
			width := 0
			if row.of > 0 {
				width = barW * row.v / row.of
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#eee"/>`+"\n", labelW, y+3, barW, rowH-6)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", labelW, y+3, width, rowH-6, row.color)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", labelW+barW+8, y+rowH-7, html.EscapeString(row.text))
			y += rowH
		}
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#444">%s</text>`+"\n", h-10, html.EscapeString(rep.summary))
	b.WriteString("</svg>\n")
	return b.Bytes()
}

const docHead = `# make fit: do profiles fit real programs?

` + "`make fit`" + ` (the Go program ` + "`fit/`" + `, run as root after ` + "`make build`" + `) measures whether
tailor's profiles survive normal use while still stopping attacks, on real programs from
Debian packages run as local commands, and nginx and PostgreSQL also as containers. For
each program:

1. **A, learning**: ` + "`tailor learn --workload 'fit workload NAME A ...' -- COMMAND`" + ` in a working
   directory ` + "`.../checkout-a`" + ` (one-shot programs: each command learned on its own, the
   bundle made from all recordings), then ` + "`tailor generate`" + ` (and ` + "`--strict`" + ` for comparison).
   nginx's A reloads and reopens its logs (its master then gives them to the worker user)
   and stops gracefully (SIGQUIT); nginx is learned across a restart: a second learning run
   starts over the state the first left, and the bundle is made from both recordings.
2. **A replayed three times** under ` + "`tailor enforce --anomalies FILE`" + `: every anomaly and any
   failure of the workload is a false denial. nginx's replays start over the state the
   run before them left (a restart), the others from the state learning started from.
3. **B, held-out normal use**, in another working directory (` + "`.../elsewhere/checkout-b`" + `,
   through ` + "`--cwd`" + ` and ` + "`@{cwd}`" + `): other pages and pages added after learning (nginx,
   python), other keys, types, INFO and a BGSAVE (redis), other tables, a bulk insert, an
   index and VACUUM on a fresh data directory (PostgreSQL), other files in other
   directories of a new repository (git), another schema and transaction (sqlite3). Any
   anomaly or failure is a false denial.
4. **C, attacks**: each step played inside the confined process at start-up by the
   preloaded library ` + "`testdata/fit/attack.c`" + ` (preloaded in A and B too, so it is part of what
   was learned): exec ` + "`/bin/sh`" + `, read ` + "`/etc/shadow`" + `, create ` + "`/etc/fit-attack`" + `, create
   ` + "`/usr/bin/fit-attack`" + `, connect to an unlearned 127.0.0.1 port, ` + "`unshare(CLONE_NEWNS)`" + `,
   ` + "`mount`" + ` a tmpfs, ` + "`ptrace(PTRACE_ATTACH)`" + ` another process. **Flagged**: an anomaly was
   reported. **Blocked**: the step got EPERM or EACCES (or EROFS from a container's
   read-only root) and an anomaly says the kernel blocked it. This host has no AppArmor:
   blocking is Landlock, seccomp and dropped capabilities for local commands; seccomp,
   dropped capabilities and the hardened configuration's read-only root for containers
   (their file, exec and network rules are AppArmor's, so a container's shell, shadow and
   connect steps are flagged, not blocked, here).

**Containers** (` + "`nginx-container`" + `, ` + "`postgresql-container`" + `): images built on a private
dockerd (` + "`internal/dockertest`" + `, ` + "`--bridge=none`" + `) from the host's Debian packages, the
program with its libraries, a user database, ` + "`/bin/sh`" + `, ` + "`/etc/shadow`" + ` and the attack library
(` + "`fit/containers.go`" + `; no registry). nginx serves a document root bind-mounted from the phase's
directory (B: pages added after learning) and stops with SIGQUIT; PostgreSQL's cluster is
made at image build (initdb) and B runs the other queries. A: ` + "`tailor learn --container`" + `;
replays and B: ` + "`tailor enforce --container --workload`" + ` (the bundle's seccomp profile,
capabilities, no-new-privileges and hardened run configuration: read-only root with tmpfs
or volumes, limits); C: a container per step, its environment naming the step. The
workloads run in the copy's network namespace; nginx's container workload has no reload
(the workload is not in the container's pid namespace).

The summary line counts false denials over all A replays and B runs, and attacks over all
programs.

![fit chart](fit.svg)

## Results (pasted from the run, unedited)

`

func writeDoc(path string, rep *report) error {
	svg := filepath.Join(filepath.Dir(path), "fit.svg")
	if err := os.WriteFile(svg, chart(rep), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(docHead)
	b.WriteString(rep.tables)
	b.WriteString("\n    " + rep.summary + "\n")
	if tail, err := os.ReadFile(filepath.Join(filepath.Dir(path), "fit-notes.md")); err == nil {
		b.WriteString("\n" + string(tail))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
