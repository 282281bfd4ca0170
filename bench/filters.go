package main

// The comparison a user makes: a server under Docker's default seccomp profile next to
// the same server under tailor's learned seccomp.json. Both are compiled by libseccomp
// through profiles.CompileSeccomp and installed by tailor's launcher right before
// execve, exactly as `tailor enforce` installs its own filter, so only the profile
// differs. Docker's default is moby's profile from the module in go.mod, expanded as
// Docker expands it for a container with Docker's default capabilities.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"

	"github.com/docker/docker/oci/caps"
	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	seccomp "github.com/seccomp/libseccomp-golang"

	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/profiles"
)

const filterMode = "bench-filter"

func init() { launch.Register(filterMode, filterSetup) }

// filterSetup is the launcher child's side: the payload's mode is a seccomp profile.
func filterSetup(t *launch.Target) (*seccomp.ScmpFilter, error) {
	p, err := profiles.DecodeSeccomp(t.Mode)
	if err != nil {
		return nil, err
	}
	return profiles.CompileSeccomp(p, profiles.CompileOptions{})
}

// dockerDefault renders moby's default profile for this machine and Docker's default
// capability set, in the specs.LinuxSeccomp shape seccomp.json has.
func dockerDefault() ([]byte, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps.DefaultCapabilities()}}}
	sc, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("moby's default seccomp profile: %w", err)
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return nil, fmt.Errorf("the bench knows no architecture %s", runtime.GOARCH)
	}
	// runc skips the names its libseccomp does not know (syscalls newer than the
	// library); tailor's compiler refuses them, so they are left out here as runc
	// leaves them out.
	for i := range sc.Syscalls {
		var known []string
		for _, n := range sc.Syscalls[i].Names {
			if _, err := seccomp.GetSyscallFromName(n); err == nil {
				known = append(known, n)
			}
		}
		sc.Syscalls[i].Names = known
	}
	sc.Syscalls = slices.DeleteFunc(sc.Syscalls, func(r specs.LinuxSyscall) bool { return len(r.Names) == 0 })
	return json.Marshal(sc)
}

// runFiltered starts argv under the seccomp profile alone, runs workload, then stops
// the server with stop.
func runFiltered(argv []string, workload string, env []string, stop syscall.Signal, profile []byte) error {
	p, err := launch.Start(filterMode, launch.Payload{Argv: argv, Env: os.Environ(), Mode: profile}, launch.Stdio{})
	if err != nil {
		return err
	}
	defer p.Cleanup()
	if err := p.Release(); err != nil {
		p.Wait()
		return err
	}
	wl := exec.Command("sh", "-c", workload)
	wl.Env = append(os.Environ(), env...)
	out, werr := wl.CombinedOutput()
	_ = p.Signal(stop)
	_, serr := p.Wait()
	if werr != nil {
		return fmt.Errorf("workload: %v: %s", werr, out)
	}
	if serr != nil {
		return fmt.Errorf("server: %w", serr)
	}
	return nil
}
