package profiles

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

const testProfile = `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
  "syscalls": [
    {"names": ["read", "write", "exit_group", "newfstatat", "fstatat64", "socketcall"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
      {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
    {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
      {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
  ]
}`

func writeTemp(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// exportPFC renders a filter as libseccomp's pseudo filter code, the readable form of
// what the kernel would get.
func exportPFC(t *testing.T, f *libseccomp.ScmpFilter) string {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "pfc")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := f.ExportPFC(out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestCompileSeccomp(t *testing.T) {
	p, err := LoadSeccomp(writeTemp(t, "seccomp.json", testProfile))
	if err != nil {
		t.Fatal(err)
	}
	f, err := CompileSeccomp(p, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	def, err := f.GetDefaultAction()
	if err != nil {
		t.Fatal(err)
	}
	if def != libseccomp.ActErrno.SetReturnCode(1) {
		t.Errorf("default action %v, want ERRNO(1)", def)
	}
	if nnp, _ := f.GetNoNewPrivsBit(); nnp {
		t.Error("no_new_privs set without NoNewPrivs")
	}
	for _, a := range []libseccomp.ScmpArch{libseccomp.ArchAMD64, libseccomp.ArchX86} {
		if ok, err := f.IsArchPresent(a); err != nil || !ok {
			t.Errorf("arch %s not in filter: %v", a, err)
		}
	}
	pfc := exportPFC(t, f)
	for _, want := range []string{
		"action ERRNO(38)",    // clone3 -> ENOSYS
		"action KILL_PROCESS", // ptrace
		"# filter for syscall \"socket\" (41)",
		"& 0x7e020000", // masked-equal on clone flags
	} {
		if !strings.Contains(pfc, want) {
			t.Errorf("filter lacks %q:\n%s", want, pfc)
		}
	}
	// bpf repeats the default action: runc skips such rules, so must we.
	if strings.Contains(pfc, "\"bpf\"") {
		t.Errorf("rule repeating the default action was added:\n%s", pfc)
	}
}

func TestCompileSeccompComplain(t *testing.T) {
	p, err := DecodeSeccomp([]byte(testProfile))
	if err != nil {
		t.Fatal(err)
	}
	f, err := CompileSeccomp(p, CompileOptions{Complain: true, NoNewPrivs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	def, _ := f.GetDefaultAction()
	if def != libseccomp.ActLog {
		t.Errorf("complain default action %v, want LOG", def)
	}
	if nnp, _ := f.GetNoNewPrivsBit(); !nnp {
		t.Error("NoNewPrivs not applied")
	}
	pfc := exportPFC(t, f)
	for _, deny := range []string{"ERRNO", "KILL", "TRAP"} {
		if strings.Contains(pfc, "action "+deny) {
			t.Errorf("complain filter still has a %s action:\n%s", deny, pfc)
		}
	}
}

func TestCompileSeccompBadInput(t *testing.T) {
	for _, tc := range []struct{ name, profile, want string }{
		{"unknown syscall", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","no_such_call"],"action":"SCMP_ACT_ALLOW"}]}`, `no_such_call`},
		{"unknown arch", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_VAX"],"syscalls":[]}`, `unknown seccomp architecture "SCMP_ARCH_VAX"`},
		{"arch without prefix", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["x86_64"],"syscalls":[]}`, `unknown seccomp architecture "x86_64"`},
		{"unknown action", `{"defaultAction":"SCMP_ACT_MAYBE","syscalls":[]}`, `unknown seccomp action "SCMP_ACT_MAYBE"`},
		{"unknown operator", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_LIKE"}]}]}`, `unknown argument operator`},
		{"conditional rule", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}`, `includes/excludes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodeSeccomp([]byte(tc.profile))
			if err != nil {
				t.Fatal(err)
			}
			f, err := CompileSeccomp(p, CompileOptions{})
			if err == nil {
				f.Release()
				t.Fatal("compiled")
			}
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want bad input mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLoadSeccompBadFile(t *testing.T) {
	for _, body := range []string{`not json`, `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":1}`, `{}`} {
		path := writeTemp(t, "bad.json", body)
		_, err := LoadSeccomp(path)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want bad input naming the file", body, err)
		}
	}
}

func TestCheckSeccompNames(t *testing.T) {
	p, err := DecodeSeccomp([]byte(testProfile))
	if err != nil {
		t.Fatal(err)
	}
	// newfstatat is x86_64-only and fstatat64 x86-only: both resolve (to a pseudo
	// number on the other arch), so the profile is valid.
	if err := CheckSeccompNames(p); err != nil {
		t.Fatal(err)
	}
	p.Syscalls = append(p.Syscalls, &SeccompSyscall{Name: "frobnicate"})
	err = CheckSeccompNames(p)
	if err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("unknown name accepted: %v", err)
	}
	for _, tc := range []struct {
		name string
		arch libseccomp.ScmpArch
		real bool
	}{{"newfstatat", libseccomp.ArchAMD64, true}, {"newfstatat", libseccomp.ArchX86, false}, {"socketcall", libseccomp.ArchX86, true}, {"socketcall", libseccomp.ArchAMD64, false}} {
		got, err := SyscallOnArch(tc.name, tc.arch)
		if err != nil || got != tc.real {
			t.Errorf("SyscallOnArch(%s, %s) = %v, %v; want %v", tc.name, tc.arch, got, err, tc.real)
		}
	}
}

// Docker's default profile must decode with the strict decoder: the type is moby's.
func TestDecodeDockerDefault(t *testing.T) {
	data, err := json.Marshal(mobyseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodeSeccomp(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Syscalls) < 10 {
		t.Fatalf("decoded %d rules", len(p.Syscalls))
	}
}
