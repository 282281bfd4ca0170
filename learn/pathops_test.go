package learn

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// wantPathOps checks the recording of `workload pathops dir`.
func wantPathOps(t *testing.T, rec *profiles.Recording, dir string) {
	t.Helper()
	d := dir + "/d"
	for path, want := range map[string][]string{
		d:           {profiles.AccessMkdir, profiles.AccessRmdir},
		d + "/f":    {profiles.AccessCreate, profiles.AccessRenameFrom, profiles.AccessWrite},
		d + "/g":    {profiles.AccessDelete, profiles.AccessLinkFrom, profiles.AccessRenameTo, profiles.AccessSetattr},
		d + "/h":    {profiles.AccessDelete, profiles.AccessLinkTo},
		d + "/s":    {profiles.AccessDelete, profiles.AccessSymlink},
		d + "/p":    {profiles.AccessDelete, profiles.AccessMknod},
		d + "/sock": {profiles.AccessBind, profiles.AccessConnect, profiles.AccessDelete},
	} {
		if got := fileAccess(rec, path); !slices.Equal(got, want) {
			t.Errorf("%s: access %v, want %v", path, got, want)
		}
	}
	failed := false
	for _, f := range rec.Failed {
		if f.Path == dir+"/missing" && f.Errno == "ENOENT" && slices.Equal(f.Access, []string{profiles.AccessRead}) {
			failed = true
		}
		if f.Path == d || strings.HasPrefix(f.Path, d+"/") {
			t.Errorf("failed attempt in the workload's own directory: %+v", f)
		}
	}
	if !failed {
		t.Errorf("the ENOENT open of %s/missing is not among the failed attempts: %+v", dir, rec.Failed)
	}
	if fileAccess(rec, dir+"/missing") != nil {
		t.Errorf("a failed open is recorded as a need")
	}
	if !slices.Contains(rec.Network.Connects, profiles.Peer{Family: "AF_UNIX", Address: d + "/sock"}) {
		t.Errorf("unix connect to %s/sock not among the peers: %+v", d, rec.Network.Connects)
	}
	if !rec.Complete {
		t.Errorf("recording incomplete: %v", rec.Incomplete)
	}
}

func TestLearnPathOperations(t *testing.T) {
	wl, _ := workloads(t)
	dir := t.TempDir()
	wantPathOps(t, learnIt(t, Options{}, wl, "pathops", dir), dir)
}

// The per-syscall tracepoints never fire for 32-bit calls: the raw sys_exit program
// must see a compat program's path operations just the same.
func TestLearnPathOperationsCompat32(t *testing.T) {
	_, wl32 := workloads(t)
	if wl32 == "" {
		testpriv.Unavailable(t, "gcc -m32 cannot build here (install gcc-multilib)")
	}
	dir := t.TempDir()
	wantPathOps(t, learnIt(t, Options{}, wl32, "pathops", dir), dir)
}

// straceCall matches a line of `strace -f -y` output: pid, syscall, arguments, result.
var straceCall = regexp.MustCompile(`^(?:\[pid +\d+\] |\d+ +)?([a-z0-9_]+)\((.*)\) += (-?\d+|\?)`)

// fileCalls are the opening, creating, deleting, renaming, linking, attribute-changing
// and connecting calls the recording must account for; metadata-only calls (stat,
// access, readlink, chdir) are left out, as the issue allows.
var fileCalls = map[string]bool{
	"open": true, "openat": true, "openat2": true, "creat": true, "mkdir": true, "mkdirat": true,
	"rmdir": true, "unlink": true, "unlinkat": true, "rename": true, "renameat": true, "renameat2": true,
	"link": true, "linkat": true, "symlink": true, "symlinkat": true, "chmod": true, "fchmodat": true,
	"chown": true, "lchown": true, "fchownat": true, "utimes": true, "utimensat": true, "truncate": true,
	"mknod": true, "mknodat": true, "bind": true, "connect": true, "execve": true,
}

var (
	quoted = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
	atDir  = regexp.MustCompile(`^(AT_FDCWD|\d+<([^>]*)>)`)
)

// stracePaths runs argv under strace and returns every path the file calls named
// after the first execve, made absolute like the tracer does (joined to the working
// directory or the directory fd), with directory symlinks resolved.
func stracePaths(t *testing.T, argv ...string) map[string]bool {
	t.Helper()
	out := filepath.Join(t.TempDir(), "strace.out")
	cmd := exec.Command("strace", append([]string{"-f", "-y", "-qq", "-s", "4096", "-o", out,
		"-e", "trace=%file,%net,chdir"}, argv...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace %v: %v\n%s", argv, err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cwd, _ := os.Getwd()
	paths := map[string]bool{}
	first := true
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := straceCall.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name, args := m[1], m[2]
		if name == "execve" && first {
			first = false
			continue // the program itself: the recording has it as its exec
		}
		strs := quoted.FindAllStringSubmatch(args, -1)
		if name == "chdir" && m[3] == "0" && len(strs) > 0 {
			if filepath.IsAbs(strs[0][1]) {
				cwd = strs[0][1]
			} else {
				cwd = filepath.Join(cwd, strs[0][1])
			}
			continue
		}
		if !fileCalls[name] || len(strs) == 0 {
			continue
		}
		base := cwd
		if d := atDir.FindStringSubmatch(args); d != nil && d[2] != "" && name != "bind" && name != "connect" {
			base = d[2]
		}
		names := []string{strs[0][1]}
		switch name {
		case "rename", "link", "renameat", "renameat2", "linkat":
			if len(strs) > 1 {
				names = append(names, strs[1][1])
			}
		case "symlink", "symlinkat":
			names = []string{strs[len(strs)-1][1]} // the link, not its content
		case "bind", "connect":
			if !strings.Contains(args, "AF_UNIX") {
				continue
			}
		}
		for _, n := range names {
			if n == "" {
				continue
			}
			p := n
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			paths[resolveDirs(p, name)] = true
		}
	}
	return paths
}

// resolveDirs resolves symlinks in p's directories, and for a successful open or exec
// in p itself (the tracer reads those from the opened file), as the tracer's paths are.
func resolveDirs(p, call string) string {
	follow := strings.HasPrefix(call, "open") || call == "creat" || call == "execve"
	if fi, err := os.Lstat(p); err == nil && (follow || fi.Mode()&os.ModeSymlink == 0) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(d, filepath.Base(p))
	}
	return p
}

// For a deterministic workload the recording's paths are exactly those strace shows:
// none missing, none extra but the program and the ELF loader the kernel maps itself.
func TestLearnPathsMatchStrace(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		testpriv.Unavailable(t, "strace is not installed")
	}
	wl, _ := workloads(t)
	// The same directory for both runs, so the paths compare as they are.
	dir := t.TempDir()
	t.Run("workload", func(t *testing.T) { matchStrace(t, wl, "pathops", dir) })
	// A shell and coreutils: several processes, PATH searches, relative names.
	script := "cd " + dir + " && mkdir e && echo x > e/f && mv e/f e/g && ln e/g e/h && ln -s g e/s && " +
		"chmod 600 e/g && cat e/nothere 2>/dev/null; rm -r e"
	t.Run("shell", func(t *testing.T) { matchStrace(t, "/bin/sh", "-c", script) })
}

func matchStrace(t *testing.T, argv ...string) {
	want := stracePaths(t, argv...)
	rec := learnIt(t, Options{}, argv...)
	got := map[string]bool{}
	for _, f := range rec.Files {
		got[f.Path] = true
	}
	for _, f := range rec.Failed {
		got[f.Path] = true
	}
	for _, p := range rec.Network.Connects {
		if p.Family == "AF_UNIX" && !strings.HasPrefix(p.Address, "@") {
			got[p.Address] = true
		}
	}
	exe, err := filepath.EvalSymlinks(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	for p := range got {
		if !want[p] && p != exe && !isLoader(rec, p) {
			t.Errorf("recorded %s, which strace did not show", p)
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("strace shows %s, the recording lacks it", p)
		}
	}
}

// isLoader reports whether p is the ELF interpreter of an exec in rec.
func isLoader(rec *profiles.Recording, p string) bool {
	for _, f := range rec.Files {
		if f.Path == p && slices.Equal(f.Access, []string{profiles.AccessMmapExec, profiles.AccessRead}) {
			return strings.Contains(filepath.Base(p), "ld-linux") || strings.HasPrefix(filepath.Base(p), "ld-")
		}
	}
	return false
}
