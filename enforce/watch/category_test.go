package watch

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

func TestClassify(t *testing.T) {
	r, w, c, x := profiles.AccessRead, profiles.AccessWrite, profiles.AccessCreate, profiles.AccessExec
	for _, tc := range []struct {
		name     string
		s        subject
		cat, sev string
	}{
		{"shell by exec event", subject{kind: "exec", path: "/bin/sh"}, CatShell, SeverityHigh},
		{"bash refused by Landlock", subject{kind: "exec", path: "/usr/bin/bash"}, CatShell, SeverityHigh},
		{"busybox", subject{kind: "exec", path: "/bin/busybox"}, CatShell, SeverityHigh},
		{"other program", subject{kind: "exec", path: "/usr/bin/curl"}, CatExec, SeverityMedium},
		{"shell seen as a file exec", subject{kind: "file", path: "/bin/dash", access: []string{x}}, CatShell, SeverityHigh},
		{"shadow read", subject{kind: "file", path: "/etc/shadow", access: []string{r}}, CatSensitiveRead, SeverityHigh},
		{"ssh key read", subject{kind: "file", path: "/home/u/.ssh/id_ed25519", access: []string{r}}, CatSensitiveRead, SeverityHigh},
		{"host key read", subject{kind: "file", path: "/etc/ssh/ssh_host_rsa_key", access: []string{r}}, CatSensitiveRead, SeverityHigh},
		{"sudoers.d read", subject{kind: "file", path: "/etc/sudoers.d/x", access: []string{r}}, CatSensitiveRead, SeverityHigh},
		{"shadow written", subject{kind: "file", path: "/etc/shadow", access: []string{w}}, CatSystemWrite, SeverityCritical},
		{"write below /etc", subject{kind: "file", path: "/etc/x", access: []string{c, w}}, CatSystemWrite, SeverityHigh},
		{"write below /usr/bin", subject{kind: "file", path: "/usr/bin/x", access: []string{c}}, CatSystemWrite, SeverityHigh},
		{"delete below /bin", subject{kind: "file", path: "/bin/ls", access: []string{profiles.AccessDelete}}, CatSystemWrite, SeverityHigh},
		{"dpkg database", subject{kind: "file", path: "/var/lib/dpkg/status", access: []string{w}}, CatSystemWrite, SeverityHigh},
		// Not widened into an attack category: an ordinary read or write elsewhere.
		{"read below /etc", subject{kind: "file", path: "/etc/passwd", access: []string{r}}, CatFile, SeverityLow},
		{"read below /usr", subject{kind: "file", path: "/usr/share/x", access: []string{r}}, CatFile, SeverityLow},
		{"write in /tmp", subject{kind: "file", path: "/tmp/x", access: []string{w}}, CatFile, SeverityMedium},
		{"/etcetera is not /etc", subject{kind: "file", path: "/etcetera/x", access: []string{w}}, CatFile, SeverityMedium},
		{"/usrlocal is not /usr", subject{kind: "file", path: "/usrlocal", access: []string{w}}, CatFile, SeverityMedium},
		{"docker socket", subject{kind: "file", path: "/run/docker.sock", access: []string{profiles.AccessConnect}}, CatPrivilege, SeverityCritical},
		{"unix socket", subject{kind: "file", path: "/run/x.sock", access: []string{profiles.AccessConnect}}, CatOutbound, SeverityMedium},
		{"connect", subject{kind: "network"}, CatOutbound, SeverityMedium},
		{"accept", subject{kind: "network", inbound: true}, CatInbound, SeverityMedium},
		{"packet socket", subject{kind: "socket", family: "AF_PACKET"}, CatRawNetwork, SeverityHigh},
		{"inet6 socket", subject{kind: "socket", family: "AF_INET6"}, CatSocket, SeverityMedium},
		{"setuid", subject{kind: "syscall", syscall: "setuid"}, CatPrivilege, SeverityHigh},
		{"capset", subject{kind: "syscall", syscall: "capset"}, CatPrivilege, SeverityHigh},
		{"CAP_CHOWN check", subject{kind: "capability", capability: "CAP_CHOWN"}, CatPrivilege, SeverityHigh},
		{"CAP_SYS_ADMIN check", subject{kind: "capability", capability: "CAP_SYS_ADMIN"}, CatNamespace, SeverityHigh},
		{"CAP_SYS_MODULE check", subject{kind: "capability", capability: "CAP_SYS_MODULE"}, CatKernel, SeverityCritical},
		{"CAP_SYS_PTRACE check", subject{kind: "capability", capability: "CAP_SYS_PTRACE"}, CatProcessInject, SeverityHigh},
		{"unshare", subject{kind: "syscall", syscall: "unshare"}, CatNamespace, SeverityHigh},
		{"setns", subject{kind: "syscall", syscall: "setns"}, CatNamespace, SeverityHigh},
		{"mount", subject{kind: "syscall", syscall: "mount"}, CatNamespace, SeverityHigh},
		{"ptrace", subject{kind: "syscall", syscall: "ptrace"}, CatProcessInject, SeverityHigh},
		{"bpf", subject{kind: "syscall", syscall: "bpf"}, CatKernel, SeverityCritical},
		{"finit_module", subject{kind: "syscall", syscall: "finit_module"}, CatKernel, SeverityCritical},
		{"execve refused by seccomp", subject{kind: "syscall", syscall: "execve"}, CatExec, SeverityMedium},
		{"other syscall", subject{kind: "syscall", syscall: "getpriority"}, CatSyscall, SeverityLow},
		{"unknown number", subject{kind: "syscall", syscall: "#999"}, CatSyscall, SeverityLow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat, sev := classify(tc.s)
			if cat != tc.cat || sev != tc.sev {
				t.Errorf("classify(%+v) = %s/%s, want %s/%s", tc.s, cat, sev, tc.cat, tc.sev)
			}
		})
	}
}

// The report page reads category and severity from the JSON lines; the terminal line
// shows them too.
func TestCategoryInReports(t *testing.T) {
	var js, human bytes.Buffer
	r := newReporter(&js, &human, 0, 10)
	a := Anomaly{Kind: "exec", Detail: "exec of /bin/sh by /x", Action: "blocked", Category: CatShell, Severity: SeverityHigh}
	r.observe(1, "exec|/bin/sh", a, 1, false)
	var got map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(js.Bytes()), &got); err != nil {
		t.Fatal(err)
	}
	if got["category"] != CatShell || got["severity"] != SeverityHigh {
		t.Errorf("JSON line %s", js.String())
	}
	if !strings.Contains(human.String(), "ANOMALY [blocked] high shell-spawned (exec)") {
		t.Errorf("terminal line %q", human.String())
	}
}
