package generate

import (
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tailor-sec/tailor/profiles"
)

// generalisable lists every name the families and the baseline may add.
func generalisable() []string {
	var names []string
	for _, f := range syscallFamilies {
		names = append(names, f.members...)
	}
	for _, b := range syscallBaseline {
		names = append(names, b.name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Generalisation never adds a call that needs a capability, that Docker's default
// profile denies, or that opens a new kind of access; and every name is libseccomp's.
func TestFamiliesNeverWiden(t *testing.T) {
	// Docker's default: names allowed with no argument, capability or exclusion
	// condition (an architecture condition is fine), and names of rules that need a
	// capability.
	plain, capGated := map[string]bool{}, map[string]bool{}
	for _, r := range mobyseccomp.DefaultProfile().Syscalls {
		if r.Includes != nil && len(r.Includes.Caps) > 0 {
			for _, n := range r.Names {
				capGated[n] = true
			}
			continue
		}
		if r.Action == specs.ActAllow && len(r.Args) == 0 && r.Excludes == nil {
			for _, n := range r.Names {
				plain[n] = true
			}
		}
	}
	var archs []specs.Arch
	for _, a := range profiles.KnownArchs {
		archs = append(archs, specs.Arch(a))
	}
	for _, n := range generalisable() {
		if !plain[n] {
			t.Errorf("%s: Docker's default profile does not allow it unconditionally", n)
		}
		if capGated[n] {
			t.Errorf("%s: Docker's default profile allows it only with a capability", n)
		}
		if slices.Contains(neverGeneralised, n) {
			t.Errorf("%s: opens a new kind of access (neverGeneralised)", n)
		}
		if slices.Contains(enosysFallbacks, n) || slices.Contains(signalReturn, n) {
			t.Errorf("%s: already has its own rule (ENOSYS or signal return)", n)
		}
		if !realOnSome(n, archs) {
			t.Errorf("%s: not a syscall libseccomp knows on every architecture and has on one", n)
		}
	}
	// The list of what must never be added is itself made of real names.
	for _, n := range neverGeneralised {
		if !knownToLibseccomp(n, archs) {
			t.Errorf("neverGeneralised: %s unknown to libseccomp", n)
		}
	}
	// Each family is named once, and each member of a family is in one family only.
	seen := map[string]string{}
	for _, f := range syscallFamilies {
		for _, m := range f.members {
			if other, ok := seen[m]; ok {
				t.Errorf("%s is in families %s and %s", m, other, f.name)
			}
			seen[m] = f.name
		}
	}
}

func TestGeneraliseSyscalls(t *testing.T) {
	x86_64 := []specs.Arch{specs.ArchX86_64}
	baseline := []string{"clock_gettime", "exit", "exit_group", "getpid", "getrusage", "getsockname", "gettid"}
	for _, tc := range []struct {
		name     string
		archs    []specs.Arch
		recorded []string
		want     []string // added beyond the baseline
	}{
		{"dup2 allows its family", x86_64, []string{"dup2"}, []string{"dup", "dup3"}},
		{"pipe2 allows pipe", x86_64, []string{"pipe2"}, []string{"pipe"}},
		{"newfstatat allows fstat, not the path calls", x86_64, []string{"newfstatat"}, []string{"fstat"}},
		{"lstat allows stat", x86_64, []string{"lstat"}, []string{"stat"}},
		{"wait4 allows waitid", x86_64, []string{"wait4"}, []string{"waitid"}},
		{"poll allows select", x86_64, []string{"poll"}, []string{"ppoll", "pselect6", "select"}},
		{"read allows readv and pread64", x86_64, []string{"read"}, []string{"pread64", "readv"}},
		{"32-bit twins add nothing on x86_64", x86_64, []string{"fcntl", "lseek", "mmap", "getuid"}, nil},
		{"32-bit twins on i386", []specs.Arch{specs.ArchX86}, []string{"fcntl", "getuid"}, []string{"fcntl64", "getuid32"}},
		// Capability-gated and new-access calls pull nothing in: they are in no family.
		{"capability-gated calls", x86_64, []string{"ptrace", "mount", "bpf", "prlimit64", "setuid", "unshare"}, nil},
		// A family member answered ENOSYS is not added: statx stays ENOSYS.
		{"statx is not a family member", x86_64, []string{"fstat"}, []string{"newfstatat"}},
		// Recorded baseline names are not listed as generalised.
		{"recorded baseline", x86_64, baseline, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := map[string]bool{}
			for _, n := range tc.recorded {
				rec[n] = true
			}
			var got []string
			for _, g := range generaliseSyscalls(rec, tc.archs) {
				if g.Kind != profiles.GeneralisedSyscall || g.Reason == "" || g.Rule == "" {
					t.Errorf("incomplete generalisation %+v", g)
				}
				if g.Rule != "baseline" {
					got = append(got, g.Added)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("added %v, want %v", got, tc.want)
			}
		})
	}
}

// --strict allows exactly what every profile allowed before generalisation: the
// recorded syscalls and no generalised one, and only the pid, number, id and
// 8-file directory path rules.
func TestStrict(t *testing.T) {
	for _, name := range recordingNames {
		opt := testOptions(name)
		opt.Strict = true
		b, err := Generate([]*profiles.Recording{loadRec(t, name)}, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range b.Manifest.Generalised {
			if g.Kind == profiles.GeneralisedSyscall {
				t.Errorf("%s: --strict generalised syscall %s", name, g.Added)
			}
			for _, r := range []string{ruleTempName, ruleLongNumber, ruleTargetPid, ruleCreated, ruleDevice} {
				if strings.Contains(g.Rule, r) {
					t.Errorf("%s: --strict applied %s to %s", name, r, g.Added)
				}
			}
		}
		for _, r := range b.Seccomp.Syscalls {
			if strings.HasPrefix(r.Comment, "generalised") {
				t.Errorf("%s: --strict profile has a generalised rule", name)
			}
		}
	}
}

// The size goal: nginx within 72 syscalls, redis within 70, on recordings of
// the real programs (made with examples/*/run.sh local) and on the nginx container
// recording. Generalisation also fixes what the redis example reported: its
// temp-<pid>.rdb is a temporary name.
func TestSizeGoal(t *testing.T) {
	for _, tc := range []struct {
		rec  string
		max  int
		rule string
	}{
		{"real/nginx-local", 72, ""},
		{"webserver", 72, ""},
		{"real/redis-local", 70, "/tmp/gen10-redis-X7EX2W/data/temp-*.rdb"},
	} {
		r := loadRec(t, tc.rec)
		b, err := Generate([]*profiles.Recording{r}, testOptions(path.Base(tc.rec)))
		if err != nil {
			t.Fatal(err)
		}
		opt := testOptions(path.Base(tc.rec))
		opt.Strict = true
		strict, err := Generate([]*profiles.Recording{r}, opt)
		if err != nil {
			t.Fatal(err)
		}
		got := len(b.Manifest.Syscalls[0].Names)
		t.Logf("%s: %d syscalls (--strict %d), %d file rules (--strict %d)", tc.rec, got,
			len(strict.Manifest.Syscalls[0].Names), len(b.Manifest.Files), len(strict.Manifest.Files))
		if b.Manifest.Syscalls[0].Arch != profiles.ArchX86_64 || got > tc.max {
			t.Errorf("%s: %d syscalls on %s, want at most %d", tc.rec, got, b.Manifest.Syscalls[0].Arch, tc.max)
		}
		if tc.rule != "" && !slices.ContainsFunc(b.Manifest.Files, func(f profiles.FileRule) bool { return f.Pattern == tc.rule }) {
			t.Errorf("%s: no rule %s", tc.rec, tc.rule)
		}
	}
}
