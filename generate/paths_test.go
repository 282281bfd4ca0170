package generate

import (
	"fmt"
	"reflect"
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
		{"/srv/My Files/read me.txt", "/srv/My Files/read me.txt"},
		// Sensitive paths are never widened.
		{"/etc/shadow", "/etc/shadow"},
		{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/pid_max"},
		{"/sys/fs/cgroup/1234/cgroup.procs", "/sys/fs/cgroup/1234/cgroup.procs"},
		{"/root/.cache/0123456789abcdef", "/root/.cache/0123456789abcdef"},
		{"/home/u/.ssh/id_ed25519", "/home/u/.ssh/id_ed25519"},
		{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key"},
		{"/etc/sudoers.d/90-cloud", "/etc/sudoers.d/90-cloud"},
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

func TestGeneralizeFilesSiblings(t *testing.T) {
	in := files("/srv/static", SiblingThreshold-1, profiles.AccessRead)
	if got := GeneralizeFiles(in); len(got) != SiblingThreshold-1 {
		t.Errorf("below the threshold: %d rules, want one per file", len(got))
	}
	in = append(files("/srv/static", SiblingThreshold, profiles.AccessRead),
		profiles.FileAccess{Path: "/srv/static/f00", Access: []string{profiles.AccessWrite}},
		profiles.FileAccess{Path: "/srv/static", Access: []string{profiles.AccessList}, Dir: true})
	want := []profiles.FileRule{
		{Pattern: "/srv/static/", Access: []string{profiles.AccessList}},
		{Pattern: "/srv/static/*", Access: []string{profiles.AccessRead, profiles.AccessWrite}},
	}
	if got := GeneralizeFiles(in); !reflect.DeepEqual(got, want) {
		t.Errorf("at the threshold: %+v, want %+v", got, want)
	}
	// A sensitive directory keeps every file on its own, however many.
	in = files("/etc/ssl/private", SiblingThreshold+2, profiles.AccessRead)
	if got := GeneralizeFiles(in); len(got) != SiblingThreshold+2 {
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
