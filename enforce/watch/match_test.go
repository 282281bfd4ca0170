package watch

import (
	"slices"
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

func TestGlobToRegexp(t *testing.T) {
	for _, c := range []struct {
		glob  string
		match []string
		not   []string
	}{
		{"/etc/passwd", []string{"/etc/passwd"}, []string{"/etc/passwd2", "/etc/shadow", "/etc/passw"}},
		{"/proc/@{pid}/status", []string{"/proc/1/status", "/proc/4242/status"}, []string{"/proc/self/status", "/proc/0/status", "/proc/1/2/status"}},
		{"/var/www/*", []string{"/var/www/index.html", "/var/www/"}, []string{"/var/www/a/b", "/var/www"}},
		{"/var/**", []string{"/var/a/b/c"}, []string{"/usr/a"}},
		{"/tmp/f?", []string{"/tmp/f1"}, []string{"/tmp/f/", "/tmp/f12"}},
		{"/dev/{null,zero}", []string{"/dev/null", "/dev/zero"}, []string{"/dev/random"}},
		{"/lib/[a-c]x", []string{"/lib/bx"}, []string{"/lib/dx"}},
		{`/weird/\*name`, []string{"/weird/*name"}, []string{"/weird/xname"}},
		{"/run/a.b", []string{"/run/a.b"}, []string{"/run/aXb"}},
	} {
		re, err := globToRegexp(c.glob)
		if err != nil {
			t.Fatalf("%s: %v", c.glob, err)
		}
		for _, m := range c.match {
			if !re.MatchString(m) {
				t.Errorf("%s should match %s", c.glob, m)
			}
		}
		for _, m := range c.not {
			if re.MatchString(m) {
				t.Errorf("%s should not match %s", c.glob, m)
			}
		}
	}
	for _, bad := range []string{`/a\`, "/a[b", "/a{b,c", "/@{HOME}/x"} {
		if _, err := globToRegexp(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFileRulesMissing(t *testing.T) {
	fr, err := compileFileRules([]profiles.FileRule{
		{Pattern: "/etc/passwd", Access: []string{"read"}},
		{Pattern: "/data/*", Access: []string{"read", "write"}},
		{Pattern: "/data/", Access: []string{"list"}},
		{Pattern: "/run/tmp/body/", Access: []string{"mkdir", "setattr"}},
	}, []string{"/usr/bin/app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path   string
		access []string
		want   []string
	}{
		{"/etc/passwd", []string{"read"}, nil},
		{"/etc/passwd", []string{"read", "write"}, []string{"write"}},
		{"/etc/shadow", []string{"read"}, []string{"read"}},
		{"/data/x", []string{"create", "write"}, nil}, // write grants create
		{"/data/", []string{"list"}, nil},
		{"/data/sub/x", []string{"read"}, []string{"read"}},
		// A chown of a directory the target made reaches user space without the
		// directory flag: the directory's rule still grants it.
		{"/run/tmp/body", []string{"setattr"}, nil},
		{"/run/tmp/body", []string{"write"}, []string{"write"}},
		{"/run/tmp/bodyx", []string{"setattr"}, []string{"setattr"}},
	} {
		if got := fr.missing(c.path, c.access); !slices.Equal(got, c.want) {
			t.Errorf("missing(%s, %v) = %v, want %v", c.path, c.access, got, c.want)
		}
	}
	if !fr.execAllowed("/usr/bin/app") || fr.execAllowed("/bin/sh") {
		t.Error("execAllowed")
	}
}
