package profiles

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"

	"github.com/tailor-sec/tailor/internal/safeio"
)

// Seccomp is a Docker seccomp profile: the OCI runtime-spec LinuxSeccomp plus Docker's
// optional per-rule comments and conditions. Reusing moby's type means every profile
// tailor writes is one Docker and runc read unchanged, and Docker's own default profile
// decodes into the same type.
type Seccomp = mobyseccomp.Seccomp

// SeccompSyscall is one rule of a Seccomp profile.
type SeccompSyscall = mobyseccomp.Syscall

// CompileOptions change how CompileSeccomp builds a filter.
type CompileOptions struct {
	// Complain turns every deny action (errno, kill, trap, trace) into SCMP_ACT_LOG, so
	// the target runs unhindered and the kernel logs each call the profile would deny.
	Complain bool
	// NoNewPrivs makes Load set no_new_privs first, which an unprivileged process needs
	// before it may install a filter. runc sets it itself (or not, per
	// noNewPrivileges), so the default here is off, as in runc.
	NoNewPrivs bool
}

// LoadSeccomp reads a seccomp profile. Every problem is one line naming the file,
// wrapped around ErrBadInput.
func LoadSeccomp(path string) (*Seccomp, error) {
	data, err := readInput(path, safeio.MaxBundleFile)
	if err != nil {
		return nil, err
	}
	p, err := DecodeSeccomp(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// DecodeSeccomp parses a seccomp profile, refusing unknown fields so a misspelt key
// (say "defaultErrno") is an error instead of a silently wider profile.
func DecodeSeccomp(data []byte) (*Seccomp, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Seccomp
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: not a seccomp profile: %v", ErrBadInput, err)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("%w: seccomp profile has no defaultAction", ErrBadInput)
	}
	return &p, nil
}

// EncodeSeccomp returns the stable, indented JSON form of p.
func EncodeSeccomp(p *Seccomp) ([]byte, error) {
	return EncodeJSON(p)
}

// ScmpArch converts a profile architecture name (SCMP_ARCH_X86_64) to libseccomp's.
func ScmpArch(name string) (libseccomp.ScmpArch, error) {
	short, ok := strings.CutPrefix(name, "SCMP_ARCH_")
	if !ok {
		return libseccomp.ArchInvalid, fmt.Errorf("%w: unknown seccomp architecture %q (want a name such as %s)", ErrBadInput, name, ArchX86_64)
	}
	a, err := libseccomp.GetArchFromString(short)
	if err != nil {
		return libseccomp.ArchInvalid, fmt.Errorf("%w: unknown seccomp architecture %q", ErrBadInput, name)
	}
	return a, nil
}

// SyscallOnArch reports whether libseccomp knows name as a real syscall of arch.
// libseccomp also resolves names that exist only on other architectures to negative
// "pseudo" numbers (socket on x86 before 4.3, newfstatat on x86): those are not real
// on arch, and a rule naming them is skipped for that arch. An error means libseccomp
// does not know the name at all (misspelt, or newer than the library).
func SyscallOnArch(name string, arch libseccomp.ScmpArch) (bool, error) {
	nr, err := libseccomp.GetSyscallFromNameByArch(name, arch)
	if err != nil {
		return false, fmt.Errorf("%w: syscall %q unknown to libseccomp on %s", ErrBadInput, name, arch)
	}
	return nr >= 0, nil
}

// profileArchs returns the architectures a filter built from p covers: the native one
// (libseccomp always includes it, and so does runc) followed by p's list.
func profileArchs(p *Seccomp) ([]libseccomp.ScmpArch, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	archs := []libseccomp.ScmpArch{native}
	for _, a := range p.Architectures {
		sa, err := ScmpArch(string(a))
		if err != nil {
			return nil, err
		}
		if !slices.Contains(archs, sa) {
			archs = append(archs, sa)
		}
	}
	return archs, nil
}

// CheckSeccompNames checks that libseccomp resolves every syscall name in p on every
// architecture the filter covers, and returns one error naming all names it does not.
// A name that exists only on some of the architectures is accepted: libseccomp (and so
// runc) then adds the rule for the architectures where the syscall exists and skips
// the others, which is what a multi-arch profile with one name list needs.
func CheckSeccompNames(p *Seccomp) error {
	archs, err := profileArchs(p)
	if err != nil {
		return err
	}
	var bad []string
	for _, r := range p.Syscalls {
		for _, name := range ruleNames(r) {
			for _, a := range archs {
				if _, err := libseccomp.GetSyscallFromNameByArch(name, a); err != nil {
					bad = append(bad, fmt.Sprintf("%s (%s)", name, a))
				}
			}
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		bad = slices.Compact(bad)
		return fmt.Errorf("%w: syscall names libseccomp %s does not know: %s", ErrBadInput, libseccompVersion(), strings.Join(bad, ", "))
	}
	return nil
}

func libseccompVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}

// ruleNames returns the names of a rule, honouring Docker's deprecated single "name".
func ruleNames(r *SeccompSyscall) []string {
	if r.Name != "" {
		return append([]string{r.Name}, r.Names...)
	}
	return r.Names
}

// CompileSeccomp builds, but does not load, a libseccomp filter from p the way runc
// does (libcontainer/seccomp): default action with defaultErrnoRet, the native
// architecture plus every listed one, each rule's action and errnoRet (EPERM when an
// errno rule gives none), argument conditions (several conditions on the same argument
// become separate rules, so they OR; conditions on different arguments AND), rules whose
// action equals the default skipped. Unlike runc, which ignores names it cannot resolve,
// an unknown name here is an error: a profile tailor enforces must mean what it says.
// runc's extra -ENOSYS stub for syscalls newer than the profile (patchbpf) is not
// reproduced; profiles express ENOSYS with explicit SCMP_ACT_ERRNO/errnoRet 38 rules.
// Profiles with Docker's conditional rules (includes, excludes, archMap) must be
// expanded for a container first and are refused. The caller releases the filter.
func CompileSeccomp(p *Seccomp, opt CompileOptions) (*libseccomp.ScmpFilter, error) {
	if len(p.ArchMap) > 0 {
		return nil, fmt.Errorf("%w: seccomp profile uses archMap, which Docker expands per host: list \"architectures\" instead", ErrBadInput)
	}
	for _, r := range p.Syscalls {
		if r.Includes != nil || r.Excludes != nil {
			return nil, fmt.Errorf("%w: seccomp rule for %s has includes/excludes conditions, which Docker expands per container: remove them", ErrBadInput, strings.Join(ruleNames(r), ","))
		}
		if r.Name != "" && len(r.Names) > 0 {
			return nil, fmt.Errorf("%w: seccomp rule gives both \"name\" and \"names\"", ErrBadInput)
		}
	}
	if err := CheckSeccompNames(p); err != nil {
		return nil, err
	}
	defAct, err := scmpAction(p.DefaultAction, p.DefaultErrnoRet, opt.Complain)
	if err != nil {
		return nil, err
	}
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: creating filter: %w", err)
	}
	if err := fillFilter(filter, p, defAct, opt); err != nil {
		filter.Release()
		return nil, err
	}
	return filter, nil
}

func fillFilter(filter *libseccomp.ScmpFilter, p *Seccomp, defAct libseccomp.ScmpAction, opt CompileOptions) error {
	if err := filter.SetNoNewPrivsBit(opt.NoNewPrivs); err != nil {
		return fmt.Errorf("seccomp: setting no_new_privs: %w", err)
	}
	if opt.Complain {
		// A call from an architecture the profile does not list is killed by default;
		// complain mode promises the target runs unhindered, so log it instead.
		if err := filter.SetBadArchAction(libseccomp.ActLog); err != nil {
			return fmt.Errorf("seccomp: setting bad-arch action: %w", err)
		}
	}
	archs, err := profileArchs(p)
	if err != nil {
		return err
	}
	for _, a := range archs[1:] {
		if err := filter.AddArch(a); err != nil {
			return fmt.Errorf("seccomp: adding architecture %s: %w", a, err)
		}
	}
	for _, f := range p.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			err = filter.SetLogBit(true)
		case specs.LinuxSeccompFlagSpecAllow:
			err = filter.SetSSB(true)
		case specs.LinuxSeccompFlagWaitKillableRecv:
			err = filter.SetWaitKill(true)
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// libseccomp-golang always synchronises all threads when it can, as runc notes.
		default:
			return fmt.Errorf("%w: unknown seccomp flag %q", ErrBadInput, f)
		}
		if err != nil {
			return fmt.Errorf("seccomp: flag %s: %w", f, err)
		}
	}
	for _, r := range p.Syscalls {
		act, err := scmpAction(r.Action, r.ErrnoRet, opt.Complain)
		if err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", strings.Join(ruleNames(r), ","), err)
		}
		if act == defAct {
			// libseccomp refuses a rule that repeats the default action; it changes nothing.
			continue
		}
		conds, separate, err := scmpConditions(r.Args)
		if err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", strings.Join(ruleNames(r), ","), err)
		}
		for _, name := range ruleNames(r) {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				return fmt.Errorf("%w: syscall %q unknown to libseccomp", ErrBadInput, name)
			}
			if separate {
				for _, c := range conds {
					if err := filter.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
						return fmt.Errorf("seccomp: rule for %s: %w", name, err)
					}
				}
				continue
			}
			if err := filter.AddRuleConditional(nr, act, conds); err != nil {
				return fmt.Errorf("seccomp: rule for %s: %w", name, err)
			}
		}
	}
	return nil
}

// scmpConditions converts a rule's argument conditions. separate is true when two
// conditions test the same argument: libseccomp cannot AND those in one rule, and runc
// then adds one rule per condition (OR), which is how Docker's profile spells "arg0 is
// one of these values".
func scmpConditions(args []specs.LinuxSeccompArg) (conds []libseccomp.ScmpCondition, separate bool, err error) {
	seen := map[uint]bool{}
	for _, a := range args {
		op, ok := scmpOps[a.Op]
		if !ok {
			return nil, false, fmt.Errorf("%w: unknown argument operator %q", ErrBadInput, a.Op)
		}
		if a.Index > 5 {
			return nil, false, fmt.Errorf("%w: argument index %d out of range 0-5", ErrBadInput, a.Index)
		}
		var c libseccomp.ScmpCondition
		if op == libseccomp.CompareMaskedEqual {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: argument condition: %v", ErrBadInput, err)
		}
		if seen[a.Index] {
			separate = true
		}
		seen[a.Index] = true
		conds = append(conds, c)
	}
	return conds, separate, nil
}

var scmpOps = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// errEPERM is the errno runc returns for an errno or trace action without errnoRet.
const errEPERM = 1

// scmpAction converts a profile action. In complain mode every action that would stop
// the call becomes SCMP_ACT_LOG.
func scmpAction(act specs.LinuxSeccompAction, errnoRet *uint, complain bool) (libseccomp.ScmpAction, error) {
	if complain {
		switch act {
		case specs.ActErrno, specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap, specs.ActTrace:
			return libseccomp.ActLog, nil
		}
	}
	code := int16(errEPERM)
	if errnoRet != nil {
		if *errnoRet > 4095 {
			return libseccomp.ActInvalid, fmt.Errorf("%w: errnoRet %d out of range", ErrBadInput, *errnoRet)
		}
		code = int16(*errnoRet)
	}
	switch act {
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(code), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(code), nil
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	case "":
		return libseccomp.ActInvalid, fmt.Errorf("%w: seccomp rule without an action", ErrBadInput)
	}
	return libseccomp.ActInvalid, fmt.Errorf("%w: unknown seccomp action %q", ErrBadInput, act)
}
