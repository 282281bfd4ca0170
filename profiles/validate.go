package profiles

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
)

// ValidateNames checks the names in r against maintained tables: every syscall name is
// a real syscall of its architecture according to libseccomp, and every capability is
// one moby/sys/capability knows. A recording naming anything else was not written by
// a matching tracer (or was edited by hand) and is bad input.
func (r *Recording) ValidateNames() error {
	for _, s := range r.Syscalls {
		arch, err := ScmpArch(s.Arch)
		if err != nil {
			return err
		}
		var bad []string
		for _, name := range s.Names {
			real, err := SyscallOnArch(name, arch)
			if err != nil || !real {
				bad = append(bad, name)
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: unknown syscall name(s) on %s: %s", ErrBadInput, s.Arch, strings.Join(bad, ", "))
		}
	}
	for _, c := range r.Capabilities {
		if _, ok := CapabilityByName(c.Name); !ok {
			return fmt.Errorf("%w: unknown capability %q", ErrBadInput, c.Name)
		}
	}
	return nil
}

// CapabilityByName looks up a capability by its kernel name ("CAP_CHOWN").
func CapabilityByName(name string) (capability.Cap, bool) {
	short, ok := strings.CutPrefix(name, "CAP_")
	if !ok {
		return 0, false
	}
	short = strings.ToLower(short)
	i := slices.IndexFunc(capability.ListKnown(), func(c capability.Cap) bool { return c.String() == short })
	if i < 0 {
		return 0, false
	}
	return capability.ListKnown()[i], true
}

// CapabilityName spells a capability number as the kernel does ("CAP_CHOWN"), through
// moby's table; a number it does not know is spelled CAP_<number>.
func CapabilityName(c int) string {
	for _, k := range capability.ListKnown() {
		if int(k) == c {
			return "CAP_" + strings.ToUpper(k.String())
		}
	}
	return fmt.Sprintf("CAP_%d", c)
}
