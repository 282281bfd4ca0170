package generate

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

func TestGeneralizePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/proc/4242/status", "/proc/@{pid}/status"},
		{"/proc/4242/task/4250/stat", "/proc/@{pid}/task/@{pid}/stat"},
		{"/proc/self/maps", "/proc/self/maps"},
		{"/proc/thread-self/comm", "/proc/thread-self/comm"},
		{"/dev/pts/3", "/dev/pts/*"},
		{"/var/lib/docker-app/4f1c2d3e5a6b/data", "/var/lib/docker-app/*/data"},
		{"/srv/app/data/facade", "/srv/app/data/facade"},           // hex letters only: a word
		{"/srv/app/deadbeef", "/srv/app/deadbeef"},                 // idem
		{"/usr/lib/python3.11/os.py", "/usr/lib/python3.11/os.py"}, // digits inside a name stay
		{"/tmp/123e4567-e89b-12d3-a456-426614174000", "/tmp/*"},
		{"/tmp/session-123e4567-e89b-12d3-a456-426614174000.sock", "/tmp/session-*.sock"},
		{"/srv/app/config[prod].yaml", `/srv/app/config\[prod\].yaml`},
		{"/srv/a*b?{c}", `/srv/a\*b\?\{c\}`},
		{"/tmp/a*.1234567890", `/tmp/a\*.*`}, // an escaped * is no glob to collapse with
		{"/tmp/x-123e4567-e89b-12d3-a456-426614174000-1234567", "/tmp/x-*"},
		{"/srv/My Files/read me.txt", "/srv/My Files/read me.txt"},
		// Sensitive paths are never widened.
		{"/etc/shadow", "/etc/shadow"},
		{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/pid_max"},
		{"/sys/fs/cgroup/1234/cgroup.procs", "/sys/fs/cgroup/1234/cgroup.procs"},
		{"/root/.cache/0123456789abcdef", "/root/.cache/0123456789abcdef"},
		{"/home/u/.ssh/id_ed25519", "/home/u/.ssh/id_ed25519"},
		{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key"},
		{"/etc/sudoers.d/90-cloud", "/etc/sudoers.d/90-cloud"},
		{"/root/data/temp-1234.rdb", "/root/data/temp-1234.rdb"},
		// Temporary names: a tmp/temp word with a pid, counter or random run.
		{"/var/lib/redis/temp-1234.rdb", "/var/lib/redis/temp-*.rdb"},
		{"/var/lib/redis/temp-rewriteaof-bg-88.aof", "/var/lib/redis/temp-rewriteaof-bg-*.aof"},
		{"/repo/.git/objects/ab/tmp_obj_a1B2c3", "/repo/.git/objects/ab/tmp_obj_*"},
		{"/pg/base/pgsql_tmp/pgsql_tmp1234.5", "/pg/base/pgsql_tmp/pgsql_tmp*"},
		{"/pg/base/pgsql_tmp/pgsql_tmp1234.0.fileset", "/pg/base/pgsql_tmp/pgsql_tmp*.fileset"},
		{"/tmp/tmp.Ab3dE5fG7h", "/tmp/tmp.*"},
		{"/tmp/tmpk3j4x8q1", "/tmp/tmp*"},
		{"/tmp/tmpk3j4_8xz", "/tmp/tmp*"},
		{"/tmp/tmpab_cdefg.json", "/tmp/tmp*.json"},
		// Long numbers after a separator: pids and random numbers.
		{"/dev/shm/PostgreSQL.1804289383", "/dev/shm/PostgreSQL.*"},
		{"/tmp/tailor-bin-3295284487/tailor", "/tmp/tailor-bin-*/tailor"},
		// Ordinary names stay literal: versions, architectures, encodings, words.
		{"/etc/nginx/nginx.conf", "/etc/nginx/nginx.conf"},
		{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"},
		{"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libssl.so.3"},
		{"/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30"},
		{"/usr/lib/x86_64-linux-gnu/libabsl_base.so.20220623", "/usr/lib/x86_64-linux-gnu/libabsl_base.so.20220623"},
		{"/usr/lib/x86_64-linux-gnu/gconv/CSN_369103.so", "/usr/lib/x86_64-linux-gnu/gconv/CSN_369103.so"},
		{"/usr/bin/python3.11", "/usr/bin/python3.11"},
		{"/usr/share/nginx/html/index.html", "/usr/share/nginx/html/index.html"},
		{"/usr/share/i18n/charmaps/UTF-8.gz", "/usr/share/i18n/charmaps/UTF-8.gz"},
		{"/usr/share/terminfo/x/xterm-256color", "/usr/share/terminfo/x/xterm-256color"},
		{"/usr/lib/python3.11/tempfile.py", "/usr/lib/python3.11/tempfile.py"},
		{"/usr/lib/python3.11/__pycache__/tempfile.cpython-311.pyc", "/usr/lib/python3.11/__pycache__/tempfile.cpython-311.pyc"},
		{"/usr/share/perl5/File/Temp.pm", "/usr/share/perl5/File/Temp.pm"},
		{"/etc/tmpfiles.d", "/etc/tmpfiles.d"},
		{"/usr/share/templates/a.html", "/usr/share/templates/a.html"},
		{"/var/lib/dpkg/info/bash.md5sums", "/var/lib/dpkg/info/bash.md5sums"},
		{"/tmp/sortXyZ12a", "/tmp/sortXyZ12a"}, // random, but only a created name says so
	} {
		if got := GeneralizePath(tc.in); got != tc.want {
			t.Errorf("GeneralizePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/My Files/x": `"/srv/My Files/x"`,
		"/a,b":            `"/a,b"`,
		"/plain":          "/plain",
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %q, want %q", in, got, want)
		}
	}
}

func files(dir string, n int, access ...string) []profiles.FileAccess {
	var out []profiles.FileAccess
	for i := range n {
		out = append(out, profiles.FileAccess{Path: fmt.Sprintf("%s/f%02d", dir, i), Access: access})
	}
	return out
}

// --strict keeps the rule from before generalisation: 8 files of any access.
func TestGeneralizeFilesSiblingsStrict(t *testing.T) {
	in := files("/srv/static", strictSiblingThreshold-1, profiles.AccessRead)
	if got, _ := GeneralizeFiles(in, true); len(got) != strictSiblingThreshold-1 {
		t.Errorf("below the threshold: %d rules, want one per file", len(got))
	}
	in = append(files("/srv/static", strictSiblingThreshold, profiles.AccessRead),
		profiles.FileAccess{Path: "/srv/static/f00", Access: []string{profiles.AccessWrite}},
		profiles.FileAccess{Path: "/srv/static", Access: []string{profiles.AccessList}, Dir: true})
	want := []profiles.FileRule{
		{Pattern: "/srv/static/", Access: []string{profiles.AccessList}},
		{Pattern: "/srv/static/*", Access: []string{profiles.AccessRead, profiles.AccessWrite}},
	}
	if got, _ := GeneralizeFiles(in, true); !reflect.DeepEqual(got, want) {
		t.Errorf("at the threshold: %+v, want %+v", got, want)
	}
	// A sensitive directory keeps every file on its own, however many.
	in = files("/etc/ssl/private", strictSiblingThreshold+2, profiles.AccessRead)
	if got, _ := GeneralizeFiles(in, true); len(got) != strictSiblingThreshold+2 {
		t.Errorf("sensitive directory widened: %+v", got)
	}
}

func TestApparmorPerms(t *testing.T) {
	for _, tc := range []struct {
		access []string
		want   string
	}{
		{[]string{profiles.AccessRead}, "r"},
		{[]string{profiles.AccessCreate}, "w"},
		{[]string{profiles.AccessMmapExec, profiles.AccessRead}, "rm"},
		{[]string{profiles.AccessExec, profiles.AccessRead, profiles.AccessWrite}, "rwix"},
		{[]string{profiles.AccessList}, "r"},
		{[]string{profiles.AccessMkdir, profiles.AccessRmdir}, "w"},
		{[]string{profiles.AccessDelete}, "w"},
		{[]string{profiles.AccessRenameFrom}, "rw"}, // the kernel asks read on a rename's source
		{[]string{profiles.AccessRenameTo}, "w"},
		{[]string{profiles.AccessLinkTo}, "l"},
		{[]string{profiles.AccessLinkFrom}, ""},
		{[]string{profiles.AccessLinkTo, profiles.AccessDelete, profiles.AccessRead}, "rwl"},
		{[]string{profiles.AccessSymlink}, "w"},
		{[]string{profiles.AccessSetattr}, "w"},
		{[]string{profiles.AccessMknod}, "w"},
		{[]string{profiles.AccessBind}, "w"},
		{[]string{profiles.AccessConnect}, "w"},
	} {
		if got := apparmorPerms(tc.access); got != tc.want {
			t.Errorf("apparmorPerms(%v) = %q, want %q", tc.access, got, tc.want)
		}
	}
}

func TestKnownAccessIsAccessKinds(t *testing.T) {
	if !knownAccess(profiles.AccessKinds) {
		t.Error("knownAccess refuses a kind of profiles.AccessKinds")
	}
	for _, k := range []string{"chmod", "unlink", ""} {
		if knownAccess([]string{k}) {
			t.Errorf("knownAccess accepts %q", k)
		}
	}
	// Every kind renders to a permission except link-from (AppArmor checks the link
	// against it but grants it nothing of its own).
	for _, k := range profiles.AccessKinds {
		if apparmorPerms([]string{k}) == "" && k != profiles.AccessLinkFrom {
			t.Errorf("%s renders to no AppArmor permission", k)
		}
	}
}

// The names of a real Debian system that hold a digit or a tmp/temp word: the rules
// that look at a name alone (temporary names, long numbers) must leave every one as
// it was before generalisation.
func TestDebianNamesStayLiteral(t *testing.T) {
	f, err := os.Open("../testdata/debian-paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		p := sc.Text()
		if strings.HasPrefix(p, "#") || p == "" {
			continue
		}
		n++
		want, _ := pathGeneralizer{strict: true}.path(p, nameContext{})
		got, rules := pathGeneralizer{}.path(p, nameContext{})
		if got != want {
			t.Errorf("%s widened to %s by %v", p, got, rules)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 2000 {
		t.Fatalf("only %d names read", n)
	}
}

func TestGeneralizeFiles(t *testing.T) {
	read, write, create := profiles.AccessRead, profiles.AccessWrite, profiles.AccessCreate
	fa := func(p string, kinds ...string) profiles.FileAccess {
		return profiles.FileAccess{Path: p, Access: kinds}
	}
	rule := func(p string, kinds ...string) profiles.FileRule { return profiles.FileRule{Pattern: p, Access: kinds} }
	for _, tc := range []struct {
		name string
		in   []profiles.FileAccess
		want []profiles.FileRule // besides the pseudo-devices
	}{
		{"a single file stays", []profiles.FileAccess{fa("/srv/www/index.html", read)},
			[]profiles.FileRule{rule("/srv/www/index.html", read)}},
		{"below the content threshold", files("/srv/www", ContentDirThreshold-1, read),
			[]profiles.FileRule{rule("/srv/www/f00", read), rule("/srv/www/f01", read)}},
		{"a content directory", files("/srv/www", ContentDirThreshold, read),
			[]profiles.FileRule{rule("/srv/www/*", read)}},
		{"a content directory widens reads only", append(files("/srv/www", ContentDirThreshold, read), fa("/srv/www/f00", write)),
			[]profiles.FileRule{rule("/srv/www/*", read), rule("/srv/www/f00", write)}},
		{"a subdirectory of a content directory", append(files("/srv/www", ContentDirThreshold, read), fa("/srv/www/files/a.pdf", read), fa("/srv/www/files/up.txt", write)),
			[]profiles.FileRule{rule("/srv/www/*", read), rule("/srv/www/files/*", read), rule("/srv/www/files/up.txt", write)}},
		{"one file beside a directory of few reads stays", []profiles.FileAccess{fa("/srv/app/conf/a.ini", read), fa("/srv/app/conf/b.ini", read), fa("/srv/app/conf/sub/c.ini", read)},
			[]profiles.FileRule{rule("/srv/app/conf/a.ini", read), rule("/srv/app/conf/b.ini", read), rule("/srv/app/conf/sub/c.ini", read)}},
		{"a sensitive subdirectory of a content directory stays", append(files("/srv/www", ContentDirThreshold, read), fa("/srv/www/.ssh/id_rsa", read)),
			[]profiles.FileRule{rule("/srv/www/*", read), rule("/srv/www/.ssh/id_rsa", read)}},
		{"libraries keep their mmap", files("/usr/lib/x86_64-linux-gnu", 5, profiles.AccessMmapExec, read),
			[]profiles.FileRule{rule("/usr/lib/x86_64-linux-gnu/*", profiles.AccessMmapExec, read)}},
		{"written files are no content", files("/srv/out", 6, create, write),
			[]profiles.FileRule{rule("/srv/out/f00", create, write), rule("/srv/out/f01", create, write), rule("/srv/out/f02", create, write),
				rule("/srv/out/f03", create, write), rule("/srv/out/f04", create, write), rule("/srv/out/f05", create, write)}},
		{"configuration is no content", files("/etc/nginx/conf.d", 5, read),
			[]profiles.FileRule{rule("/etc/nginx/conf.d/f00", read), rule("/etc/nginx/conf.d/f01", read), rule("/etc/nginx/conf.d/f02", read),
				rule("/etc/nginx/conf.d/f03", read), rule("/etc/nginx/conf.d/f04", read)}},
		{"a directory holding a sensitive path is no content", files("/var/lib", 4, read),
			[]profiles.FileRule{rule("/var/lib/f00", read), rule("/var/lib/f01", read), rule("/var/lib/f02", read), rule("/var/lib/f03", read)}},
		{"a home directory is no content", files("/home/u", 4, read),
			[]profiles.FileRule{rule("/home/u/f00", read), rule("/home/u/f01", read), rule("/home/u/f02", read), rule("/home/u/f03", read)}},
		{"a directory in a home directory is", files("/home/u/site", 4, read),
			[]profiles.FileRule{rule("/home/u/site/*", read)}},
		{"a sensitive directory is no content", files("/home/u/.ssh", 5, read),
			[]profiles.FileRule{rule("/home/u/.ssh/f00", read), rule("/home/u/.ssh/f01", read), rule("/home/u/.ssh/f02", read),
				rule("/home/u/.ssh/f03", read), rule("/home/u/.ssh/f04", read)}},
		{"pseudo file systems are no content", files("/proc/self", 4, read),
			[]profiles.FileRule{rule("/proc/self/f00", read), rule("/proc/self/f01", read), rule("/proc/self/f02", read), rule("/proc/self/f03", read)}},
		{"a created mkstemp name", []profiles.FileAccess{fa("/tmp/sortXyZ12a", create, read, write)},
			[]profiles.FileRule{rule("/tmp/sort*", create, read, write)}},
		{"git's one-letter mkstemp probe", []profiles.FileAccess{fa("/src/repo/.git/tHE5ACw", create, write, profiles.AccessDelete)},
			[]profiles.FileRule{rule("/src/repo/.git/t*", create, profiles.AccessDelete, write)}},
		{"a created one-letter word with a plain tail stays", []profiles.FileAccess{fa("/src/repo/xrelease", create, write)},
			[]profiles.FileRule{rule("/src/repo/xrelease", create, write)}},
		{"a read mkstemp-like name stays", []profiles.FileAccess{fa("/srv/data/sortXyZ12a", read)},
			[]profiles.FileRule{rule("/srv/data/sortXyZ12a", read)}},
		{"a created random suffix", []profiles.FileAccess{fa("/var/cache/app/blob.Xq3k9Z", create, write)},
			[]profiles.FileRule{rule("/var/cache/app/blob.*", create, write)}},
		{"one created counter stays", []profiles.FileAccess{fa("/srv/out/result-1.txt", create, write)},
			[]profiles.FileRule{rule("/srv/out/result-1.txt", create, write)}},
		{"created counters that change", []profiles.FileAccess{fa("/srv/out/result-1.txt", create, write), fa("/srv/out/result-2.txt", create, write), fa("/srv/out/summary.txt", create, write)},
			[]profiles.FileRule{rule("/srv/out/result-*.txt", create, write), rule("/srv/out/summary.txt", create, write)}},
		{"a created, renamed-away name's number", []profiles.FileAccess{fa("/pg/data/global/pg_internal.init.739", create, write, profiles.AccessRenameFrom), fa("/pg/data/global/pg_internal.init", read, profiles.AccessRenameTo)},
			[]profiles.FileRule{rule("/pg/data/global/pg_internal.init", read, profiles.AccessRenameTo), rule("/pg/data/global/pg_internal.init.*", create, profiles.AccessRenameFrom, write)}},
		{"a renamed-away name that was not created keeps its number", []profiles.FileAccess{fa("/srv/out/log.1", profiles.AccessRenameFrom)},
			[]profiles.FileRule{rule("/srv/out/log.1", profiles.AccessRenameFrom)}},
		{"redis multi-part AOF", []profiles.FileAccess{fa("/data/appendonly.aof.1.incr.aof", create, write), fa("/data/appendonly.aof.2.incr.aof", create, write)},
			[]profiles.FileRule{rule("/data/appendonly.aof.*.incr.aof", create, write)}},
		{"beneath a created random directory", []profiles.FileAccess{
			{Path: "/tmp/work_Xa12bc", Access: []string{profiles.AccessMkdir}, Dir: true}, fa("/tmp/work_Xa12bc/out.txt", create, write), fa("/tmp/work_Xa12bc/in.txt", read)},
			[]profiles.FileRule{rule("/tmp/work_*/", profiles.AccessMkdir), rule("/tmp/work_*/in.txt", read), rule("/tmp/work_*/out.txt", create, write)}},
		{"a transient mkstemp name, even one that looks like a word", []profiles.FileAccess{fa("/srv/r/.git/tabcdef", create, write, profiles.AccessDelete, profiles.AccessSymlink)},
			[]profiles.FileRule{rule("/srv/r/.git/t*", create, profiles.AccessDelete, profiles.AccessSymlink, write)}},
		{"a transient name with a word in it stays", []profiles.FileAccess{fa("/etc/tailor-test-uzlizovigo.conf", create, write, profiles.AccessDelete)},
			[]profiles.FileRule{rule("/etc/tailor-test-uzlizovigo.conf", create, profiles.AccessDelete, write)}},
		{"a kept created name that looks like a word stays", []profiles.FileAccess{fa("/srv/r/tabcdef", create, write)},
			[]profiles.FileRule{rule("/srv/r/tabcdef", create, write)}},
		{"read counters stay", []profiles.FileAccess{fa("/srv/in/part-1.csv", read), fa("/srv/in/part-2.csv", read)},
			[]profiles.FileRule{rule("/srv/in/part-1.csv", read), rule("/srv/in/part-2.csv", read)}},
		{"a sensitive created name stays", []profiles.FileAccess{fa("/root/.cache/sortXyZ12a", create, write), fa("/etc/ssh/tmp_obj_a1B2c3", create)},
			[]profiles.FileRule{rule("/etc/ssh/tmp_obj_a1B2c3", create), rule("/root/.cache/sortXyZ12a", create, write)}},
		{"the target's pid in a name", []profiles.FileAccess{fa("/proc/23260/smaps", read), fa("/data/dump-23260.rdb", create, write)},
			[]profiles.FileRule{rule("/data/dump-*.rdb", create, write), rule("/proc/@{pid}/smaps", read)}},
		{"another number stays", []profiles.FileAccess{fa("/proc/23260/smaps", read), fa("/data/dump-23261.rdb", create, write)},
			[]profiles.FileRule{rule("/data/dump-23261.rdb", create, write), rule("/proc/@{pid}/smaps", read)}},
		{"access kinds are carried through", []profiles.FileAccess{fa("/srv/out/a.txt", profiles.AccessDelete, profiles.AccessRenameFrom), fa("/srv/out/b.txt", profiles.AccessRenameTo)},
			[]profiles.FileRule{rule("/srv/out/a.txt", profiles.AccessDelete, profiles.AccessRenameFrom), rule("/srv/out/b.txt", profiles.AccessRenameTo)}},
		{"a recorded pseudo-device keeps its access", []profiles.FileAccess{fa("/dev/urandom", read, write)},
			[]profiles.FileRule{rule("/dev/urandom", read, write)}},
		{"the terminal is no pseudo-device", []profiles.FileAccess{fa("/dev/tty", read, write)},
			[]profiles.FileRule{rule("/dev/tty", read, write)}},
		{"git's object fan-out", []profiles.FileAccess{
			{Path: "/src/r/.git/objects/ce", Access: []string{profiles.AccessMkdir}, Dir: true},
			{Path: "/src/r/.git/objects/5a", Access: []string{profiles.AccessMkdir}, Dir: true},
			fa("/src/r/.git/objects/ce/tmp_obj_a1B2c3", create, write),
			fa("/src/r/.git/objects/5a/013625030ba8dba906f756967f9e9ca394464a", read, profiles.AccessLinkTo)},
			[]profiles.FileRule{rule("/src/r/.git/objects/*/", profiles.AccessMkdir), rule("/src/r/.git/objects/*/*", profiles.AccessLinkTo, read),
				rule("/src/r/.git/objects/*/tmp_obj_*", create, write)}},
		{"hex fan-out seen only as parents", []profiles.FileAccess{fa("/var/cache/app/ab/x1", read), fa("/var/cache/app/3f/x2", read)},
			[]profiles.FileRule{rule("/var/cache/app/*/x1", read), rule("/var/cache/app/*/x2", read)}},
		// Not a fan-out:
		{"one short hex directory stays", []profiles.FileAccess{fa("/src/r/.git/objects/5a/013625030ba8dba906f756967f9e9ca394464a", read)},
			[]profiles.FileRule{rule("/src/r/.git/objects/5a/*", read)}},
		{"hex letters alone are words", []profiles.FileAccess{fa("/usr/share/locale/de/LC_MESSAGES/x.mo", read), fa("/usr/share/locale/be/LC_MESSAGES/x.mo", read)},
			[]profiles.FileRule{rule("/usr/share/locale/be/LC_MESSAGES/x.mo", read), rule("/usr/share/locale/de/LC_MESSAGES/x.mo", read)}},
		{"hex names of different lengths", []profiles.FileAccess{fa("/srv/d/ab/x", read), fa("/srv/d/3fe/x", read)},
			[]profiles.FileRule{rule("/srv/d/3fe/x", read), rule("/srv/d/ab/x", read)}},
		{"files named by short hex stay", []profiles.FileAccess{fa("/srv/d/ab", read), fa("/srv/d/3f", read)},
			[]profiles.FileRule{rule("/srv/d/3f", read), rule("/srv/d/ab", read)}},
		{"no fan-out in a sensitive tree", []profiles.FileAccess{fa("/etc/ssl/private/ab/k", read), fa("/etc/ssl/private/3f/k", read)},
			[]profiles.FileRule{rule("/etc/ssl/private/3f/k", read), rule("/etc/ssl/private/ab/k", read)}},
		{"no fan-out in /proc or /sys", []profiles.FileAccess{fa("/proc/fb/x", read), fa("/proc/1a/x", read), fa("/sys/bus/ab/x", read), fa("/sys/bus/3f/x", read)},
			[]profiles.FileRule{rule("/proc/1a/x", read), rule("/proc/fb/x", read), rule("/sys/bus/3f/x", read), rule("/sys/bus/ab/x", read)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gens := GeneralizeFiles(tc.in, false)
			want := slices.Clone(tc.want)
			for _, d := range pseudoDevices {
				if !slices.ContainsFunc(want, func(r profiles.FileRule) bool { return r.Pattern == d.Pattern }) {
					want = append(want, d)
				}
			}
			slices.SortFunc(want, func(a, b profiles.FileRule) int { return strings.Compare(a.Pattern, b.Pattern) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
			// Every rule that is not a recorded path says why.
			for _, r := range got {
				if slices.ContainsFunc(tc.in, func(f profiles.FileAccess) bool { return escapeGlob(f.Path) == r.Pattern }) {
					continue
				}
				i := slices.IndexFunc(gens, func(g profiles.Generalisation) bool { return g.Added == r.Pattern })
				if i < 0 {
					t.Errorf("%s is not listed as generalised", r.Pattern)
				} else if gens[i].Rule == "" || gens[i].Reason == "" || gens[i].Kind != profiles.GeneralisedPath {
					t.Errorf("incomplete generalisation %+v", gens[i])
				}
			}
		})
	}
}

// --strict adds no pseudo-device and keeps temporary and created names literal.
func TestGeneralizeFilesStrict(t *testing.T) {
	in := []profiles.FileAccess{
		{Path: "/tmp/sortXyZ12a", Access: []string{profiles.AccessCreate}},
		{Path: "/var/lib/redis/temp-1234.rdb", Access: []string{profiles.AccessCreate}},
	}
	got, gens := GeneralizeFiles(in, true)
	want := []profiles.FileRule{
		{Pattern: "/tmp/sortXyZ12a", Access: []string{profiles.AccessCreate}},
		{Pattern: "/var/lib/redis/temp-1234.rdb", Access: []string{profiles.AccessCreate}},
	}
	if !reflect.DeepEqual(got, want) || len(gens) != 0 {
		t.Errorf("--strict: %v %v", got, gens)
	}
}

// A directory learning collapsed (too many files to record one by one) becomes one
// dir/* rule with the union of its files' access, named as a generalisation, in
// strict mode too; the directory's own entry keeps its rule.
func TestGeneralizeFilesCollapsedDirectory(t *testing.T) {
	in := []profiles.FileAccess{
		{Path: "/var/spool/q", Access: []string{"list"}, Dir: true},
		{Path: "/var/spool/q", Access: []string{"create", "delete", "write"}, Collapsed: 200000},
	}
	for _, strict := range []bool{false, true} {
		all, gens := GeneralizeFiles(in, strict)
		var got []profiles.FileRule // the pseudo-devices every profile allows aside
		for _, r := range all {
			if !strings.HasPrefix(r.Pattern, "/dev/") {
				got = append(got, r)
			}
		}
		want := []profiles.FileRule{
			{Pattern: "/var/spool/q/", Access: []string{"list"}},
			{Pattern: "/var/spool/q/*", Access: []string{"create", "delete", "write"}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("strict=%v: rules = %+v, want %+v", strict, got, want)
		}
		gens = slices.DeleteFunc(gens, func(g profiles.Generalisation) bool { return g.Rule == ruleDevice })
		if len(gens) != 1 || gens[0].Added != "/var/spool/q/*" || gens[0].Rule != ruleCollapsed {
			t.Fatalf("strict=%v: generalisations = %+v, want one for the collapsed directory", strict, gens)
		}
	}
}

// A walk of the tree beneath the working directory becomes one cwd/** rule of reads
// and listings; what must not widen stays as it was.
func TestWorkingTree(t *testing.T) {
	const cwd, home = "/srv/ci/checkout", "/root"
	read, list, write, create := profiles.AccessRead, profiles.AccessList, profiles.AccessWrite, profiles.AccessCreate
	fa := func(p string, kinds ...string) profiles.FileAccess {
		return profiles.FileAccess{Path: p, Access: kinds}
	}
	dir := func(p string, kinds ...string) profiles.FileAccess {
		return profiles.FileAccess{Path: p, Access: kinds, Dir: true}
	}
	// gitAdd is git add -A in a checkout of three files in two directories.
	gitAdd := []profiles.FileAccess{dir(cwd, list), dir(cwd+"/src", list), fa(cwd+"/README", read), fa(cwd+"/src/main.c", read),
		fa(cwd+"/src/main.h", read), fa(cwd+"/.git/index.lock", create, write, read)}
	tree := profiles.FileRule{Pattern: cwd + "/**", Access: []string{list, read}}
	for _, tc := range []struct {
		name      string
		in        []profiles.FileAccess
		cwd, home string
		want      []profiles.FileRule // besides the pseudo-devices
	}{
		{"a walk of the checkout", gitAdd, cwd, home,
			[]profiles.FileRule{tree, rule2(cwd+"/.git/index.lock", create, write)}},
		{"writes keep their own rules", append(slices.Clone(gitAdd), fa(cwd+"/src/main.c", write)), cwd, home,
			[]profiles.FileRule{tree, rule2(cwd+"/.git/index.lock", create, write), rule2(cwd+"/src/main.c", write)}},
		// Not a walk, or a walk that must not widen:
		{"below the threshold", []profiles.FileAccess{dir(cwd, list), dir(cwd+"/src", list), fa(cwd+"/README", read), fa(cwd+"/src/main.c", read)}, cwd, home,
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/README", read), rule2(cwd+"/src/", list), rule2(cwd+"/src/main.c", read)}},
		{"one directory only", []profiles.FileAccess{dir(cwd, list), fa(cwd+"/a.html", read), fa(cwd+"/b.html", read), fa(cwd+"/c.html", read)}, cwd, home,
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/*", read)}},
		{"the working directory itself not listed", []profiles.FileAccess{dir(cwd+"/a", list), dir(cwd+"/b", list), fa(cwd+"/a/x", read), fa(cwd+"/a/y", read), fa(cwd+"/b/z", read)}, cwd, home,
			[]profiles.FileRule{rule2(cwd+"/a/", list), rule2(cwd+"/a/x", read), rule2(cwd+"/a/y", read), rule2(cwd+"/b/", list), rule2(cwd+"/b/z", read)}},
		{"files it made itself", []profiles.FileAccess{dir(cwd, list), dir(cwd+"/out", list, profiles.AccessMkdir), fa(cwd+"/a", read),
			fa(cwd+"/out/x", read), fa(cwd+"/out/y", read)}, cwd, home,
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/a", read), rule2(cwd+"/out/", list, profiles.AccessMkdir), rule2(cwd+"/out/x", read), rule2(cwd+"/out/y", read)}},
		{"no relocatable working directory", gitAdd, "", home,
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/.git/index.lock", create, read, write), rule2(cwd+"/README", read), rule2(cwd+"/src/", list), rule2(cwd+"/src/main.c", read), rule2(cwd+"/src/main.h", read)}},
		{"home unknown", gitAdd, cwd, "",
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/.git/index.lock", create, read, write), rule2(cwd+"/README", read), rule2(cwd+"/src/", list), rule2(cwd+"/src/main.c", read), rule2(cwd+"/src/main.h", read)}},
		{"the home itself", gitAdd, cwd, cwd,
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/.git/index.lock", create, read, write), rule2(cwd+"/README", read), rule2(cwd+"/src/", list), rule2(cwd+"/src/main.c", read), rule2(cwd+"/src/main.h", read)}},
		{"a directory holding the home", gitAdd, cwd, cwd + "/users/u",
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/.git/index.lock", create, read, write), rule2(cwd+"/README", read), rule2(cwd+"/src/", list), rule2(cwd+"/src/main.c", read), rule2(cwd+"/src/main.h", read)}},
		{"a walk that met ssh keys", append(slices.Clone(gitAdd), dir(cwd+"/.ssh", list), fa(cwd+"/.ssh/id_ed25519", read)), cwd, home,
			[]profiles.FileRule{rule2(cwd+"/", list), rule2(cwd+"/.git/index.lock", create, read, write), rule2(cwd+"/.ssh/", list), rule2(cwd+"/.ssh/id_ed25519", read),
				rule2(cwd+"/README", read), rule2(cwd+"/src/", list), rule2(cwd+"/src/main.c", read), rule2(cwd+"/src/main.h", read)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all, gens := generalizeFiles(tc.in, fileOptions{cwd: tc.cwd, home: tc.home})
			got := slices.DeleteFunc(all, func(r profiles.FileRule) bool { return strings.HasPrefix(r.Pattern, "/dev/") })
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			treeGen := slices.ContainsFunc(gens, func(g profiles.Generalisation) bool { return g.Rule == ruleTree && g.Added == tree.Pattern })
			if wantTree := slices.ContainsFunc(tc.want, func(r profiles.FileRule) bool { return r.Pattern == tree.Pattern }); treeGen != wantTree {
				t.Errorf("working tree listed as generalised: %v", treeGen)
			}
		})
	}
	// --strict never widens to the tree.
	if got, _ := generalizeFiles(gitAdd, fileOptions{strict: true, cwd: cwd, home: home}); slices.ContainsFunc(got, func(r profiles.FileRule) bool { return strings.HasSuffix(r.Pattern, "/**") }) {
		t.Errorf("--strict: %v", got)
	}
}

func rule2(p string, kinds ...string) profiles.FileRule {
	return profiles.FileRule{Pattern: p, Access: kinds}
}
