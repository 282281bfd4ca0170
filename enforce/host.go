package enforce

import (
	"fmt"
	"os"
	"strings"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// Host is what enforcement needs to know about the machine. It is probed once and
// passed in, so the decisions made from it are testable for hosts unlike this one.
type Host struct {
	// Machine is uname's machine field (x86_64).
	Machine string
	// SeccompArch is the native architecture in seccomp profile spelling
	// (SCMP_ARCH_X86_64).
	SeccompArch string
	// LandlockABI is the kernel's Landlock ABI version; 0 when Landlock is absent or
	// disabled at boot.
	LandlockABI int
	// AppArmor is true when the kernel has AppArmor enabled.
	AppArmor bool
}

// ProbeHost finds out what this machine offers.
func ProbeHost() (Host, error) {
	var h Host
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return h, fmt.Errorf("uname: %w", err)
	}
	h.Machine = unix.ByteSliceToString(u.Machine[:])
	native, err := seccomp.GetNativeArch()
	if err != nil {
		return h, fmt.Errorf("libseccomp native architecture: %w", err)
	}
	// Profiles spell architectures as Docker does (SCMP_ARCH_X86_64, not libseccomp's
	// "amd64"): find the profile name that libseccomp parses to the native arch.
	for _, name := range profiles.KnownArchs {
		if a, err := profiles.ScmpArch(name); err == nil && a == native {
			h.SeccompArch = name
		}
	}
	if h.SeccompArch == "" {
		return h, fmt.Errorf("%w: native architecture %s is not one tailor profiles know (%s)", fail.ErrKernel, native, strings.Join(profiles.KnownArchs, ", "))
	}
	// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) returns the ABI
	// version, or fails with ENOSYS/EOPNOTSUPP when there is none.
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno == 0 {
		h.LandlockABI = int(abi)
	}
	enabled, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	h.AppArmor = err == nil && strings.TrimSpace(string(enabled)) == "Y"
	return h, nil
}
