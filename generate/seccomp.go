package generate

import (
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// errnoENOSYS is the errno a profile returns for a syscall it pretends the kernel
// lacks, so that libc falls back to an older call instead of failing.
const errnoENOSYS = uint(unix.ENOSYS)

// errnoEPERM is what every syscall outside the profile gets, as in Docker's default.
const errnoEPERM = uint(unix.EPERM)

// enosysFallbacks are syscalls that glibc, musl or Go's runtime probe and replace with
// an older call when the kernel answers ENOSYS. When one was not recorded, the target
// used the older call (or its libc never tried the new one), so the profile answers
// ENOSYS rather than EPERM: a libc that does try it later, after an upgrade, then falls
// back exactly as on an older kernel instead of failing with EPERM. Names libseccomp
// does not know are left out by the generator (they then get the default EPERM).
var enosysFallbacks = []string{
	"cachestat", "clone3", "close_range", "epoll_pwait2", "faccessat2", "fchmodat2",
	"futex_waitv", "map_shadow_stack", "mseal", "openat2", "pidfd_getfd", "pidfd_open",
	"pidfd_send_signal", "rseq", "statx",
}

// signalReturn are the syscalls that end a signal handler or resume a task after a
// stop. The signal trampoline (libc's or Go's restorer) and the kernel issue them, not
// the program's own code, so a recording holds them only if a signal happened to arrive
// while it was traced, and whether one does is timing. Denying them turns every handled
// signal into SIGSEGV: runc's Go init runs under the container's filter from loading it
// until the entrypoint's execve, and a signal it handles there (Go's runtime signals
// them at random) kills the container before its first instruction; a target's own
// SIGTERM handler (docker stop) crashes instead of returning. Docker's default profile
// allows all three. Names that are no real syscall on any of the profile's
// architectures (sigreturn on x86_64 alone) are left out.
var signalReturn = []string{"restart_syscall", "rt_sigreturn", "sigreturn"}

// namespaceFlags are the clone flags that create namespaces. Docker's default profile
// refuses them (mask 0x7E020000) to containers without CAP_SYS_ADMIN.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// personalityValues are the personality(2) arguments Docker's default profile allows:
// PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query).
var personalityValues = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// seccompPlan is the seccomp part of a bundle before it is rendered.
type seccompPlan struct {
	profile *profiles.Seccomp
	// allowed are the syscalls the profile allows, per architecture (manifest).
	allowed []profiles.ArchSyscalls
	// argFiltered names the syscalls allowed only for some argument values.
	argFiltered []string
	// enosys names the syscalls answered with ENOSYS.
	enosys []string
	// generalised are the syscalls the families and the baseline added.
	generalised []profiles.Generalisation
}

// buildSeccomp turns the merged recording into a Docker/OCI seccomp profile. The
// profile format has one names list for all architectures, so a name recorded on one
// architecture is allowed on every listed one where it exists: the union is the
// tightest plain profile that runs every recorded arch. libseccomp skips a name on an
// architecture that lacks the syscall (socketcall on x86_64), as runc relies on.
func buildSeccomp(rec *profiles.Recording, opt Options) (*seccompPlan, []string, error) {
	var warnings []string
	var archs []specs.Arch
	union := map[string]bool{}
	for _, s := range rec.Syscalls {
		archs = append(archs, specs.Arch(s.Arch))
		for _, n := range s.Names {
			union[n] = true
		}
		if len(s.Unknown) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s: syscall numbers %v have no libseccomp name and cannot be allowed: the target gets EPERM for them", s.Arch, s.Unknown))
		}
	}
	slices.Sort(archs)

	plan := &seccompPlan{}
	if !opt.Strict {
		// Generalised names join the union before the argument filters, so they are
		// filtered like recorded ones; they get their own allow rule below.
		plan.generalised = generaliseSyscalls(maps.Clone(union), archs)
		for _, g := range plan.generalised {
			union[g.Added] = true
		}
	}
	var rules []*profiles.SeccompSyscall
	plain := map[string]bool{}
	for n := range union {
		plain[n] = true
	}
	enosys := map[string]bool{}
	if !opt.NoArgs {
		if union["socket"] {
			r, err := socketRules(rec)
			if err != nil {
				return nil, nil, err
			}
			delete(plain, "socket")
			rules = append(rules, r...)
			plan.argFiltered = append(plan.argFiltered, "socket")
		}
		// clone3 passes its flags in a struct the filter cannot read, so it is answered
		// ENOSYS and libc falls back to clone, whose flags the filter can check (what
		// Docker's default profile does). clone is then needed even if never recorded.
		if union["clone3"] {
			delete(plain, "clone3")
			enosys["clone3"] = true
		}
		if union["clone"] || union["clone3"] {
			delete(plain, "clone")
			if union["unshare"] {
				// The target creates namespaces itself; the recording has no clone flags
				// to narrow them down, so clone is allowed as recorded.
				plain["clone"] = true
			} else {
				rules = append(rules, &profiles.SeccompSyscall{
					LinuxSyscall: specs.LinuxSyscall{
						Names:  []string{"clone"},
						Action: specs.ActAllow,
						Args:   []specs.LinuxSeccompArg{{Index: 0, Value: namespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
					},
					Comment: "clone without namespace flags (CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP): unshare was not recorded",
				})
				plan.argFiltered = append(plan.argFiltered, "clone")
			}
		}
		if union["personality"] {
			delete(plain, "personality")
			var args []specs.LinuxSeccompArg
			for _, v := range personalityValues {
				args = append(args, specs.LinuxSeccompArg{Index: 0, Value: v, Op: specs.OpEqualTo})
			}
			rules = append(rules, &profiles.SeccompSyscall{
				LinuxSyscall: specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow, Args: args},
				Comment:      "personality: only the values Docker's default profile allows",
			})
			plan.argFiltered = append(plan.argFiltered, "personality")
		}
	}
	for _, n := range enosysFallbacks {
		if union[n] {
			continue
		}
		// A name libseccomp does not know (newer than the library) cannot be named in a
		// rule; it falls to the default action.
		if !knownToLibseccomp(n, archs) {
			continue
		}
		enosys[n] = true
	}
	allow := sortedKeys(plain)
	var ownPlain, genPlain []string
	for _, n := range allow {
		if slices.ContainsFunc(plan.generalised, func(g profiles.Generalisation) bool { return g.Added == n }) {
			genPlain = append(genPlain, n)
		} else {
			ownPlain = append(ownPlain, n)
		}
	}
	head := []*profiles.SeccompSyscall{{
		LinuxSyscall: specs.LinuxSyscall{Names: nonNil(ownPlain), Action: specs.ActAllow},
		Comment:      "recorded syscalls",
	}}
	if len(genPlain) > 0 {
		head = append(head, &profiles.SeccompSyscall{
			LinuxSyscall: specs.LinuxSyscall{Names: genPlain, Action: specs.ActAllow},
			Comment:      "generalised: families of the recorded syscalls and the baseline every profile allows (bundle.json \"generalised\" says why each)",
		})
	}
	if sig := signalReturnNames(union, archs); len(sig) > 0 {
		head = append(head, &profiles.SeccompSyscall{
			LinuxSyscall: specs.LinuxSyscall{Names: sig, Action: specs.ActAllow},
			Comment:      "signal return and restart, made by the signal trampoline and the kernel rather than the program: needed whenever a signal is handled, recorded or not",
		})
		allow = append(allow, sig...)
		slices.Sort(allow)
	}
	rules = append(head, rules...)
	if len(enosys) > 0 {
		errno := errnoENOSYS
		rules = append(rules, &profiles.SeccompSyscall{
			LinuxSyscall: specs.LinuxSyscall{Names: sortedKeys(enosys), Action: specs.ActErrno, ErrnoRet: &errno},
			Comment:      "newer syscalls libc probes and replaces when the kernel lacks them: ENOSYS makes it fall back",
		})
	}
	defErrno := errnoEPERM
	plan.profile = &profiles.Seccomp{
		LinuxSeccomp: specs.LinuxSeccomp{
			DefaultAction:   specs.ActErrno,
			DefaultErrnoRet: &defErrno,
			Architectures:   archs,
		},
		Syscalls: rules,
	}
	slices.Sort(plan.argFiltered)
	plan.enosys = sortedKeys(enosys)

	// What the profile allows per architecture: the allowed names that are real
	// syscalls there.
	allowedAll := append(slices.Clone(allow), plan.argFiltered...)
	slices.Sort(allowedAll)
	for _, a := range archs {
		sa, err := profiles.ScmpArch(string(a))
		if err != nil {
			return nil, nil, err
		}
		names := []string{}
		for _, n := range allowedAll {
			if real, err := profiles.SyscallOnArch(n, sa); err == nil && real {
				names = append(names, n)
			}
		}
		plan.allowed = append(plan.allowed, profiles.ArchSyscalls{Arch: string(a), Names: names})
	}
	return plan, warnings, nil
}

// socketRules allows socket(2) only for the recorded families: one rule per family,
// which libseccomp ORs. On x86 (i386) libc may create sockets through socketcall,
// whose arguments sit behind a pointer the filter cannot read: a recorded socketcall
// stays allowed without conditions. The tracer records the family of every socket
// call, so a recording with socket calls but no family (or one tailor cannot name) was
// edited or broken: it is refused rather than widened to every family.
func socketRules(rec *profiles.Recording) ([]*profiles.SeccompSyscall, error) {
	fams := map[string]bool{}
	for _, s := range rec.Network.Sockets {
		fams[s.Family] = true
	}
	if len(fams) == 0 {
		return nil, fmt.Errorf("%w: the recording shows socket(2) calls but no socket family: it was edited or is broken; re-learn (or pass --no-args to allow socket for every family)", fail.ErrBadInput)
	}
	var rules []*profiles.SeccompSyscall
	for _, f := range sortedKeys(fams) {
		nr, ok := profiles.FamilyNumber(f)
		if !ok {
			return nil, fmt.Errorf("%w: socket family %q has no known number: re-learn (or pass --no-args to allow socket for every family)", fail.ErrBadInput, f)
		}
		rules = append(rules, &profiles.SeccompSyscall{
			LinuxSyscall: specs.LinuxSyscall{
				Names:  []string{"socket"},
				Action: specs.ActAllow,
				Args:   []specs.LinuxSeccompArg{{Index: 0, Value: uint64(nr), Op: specs.OpEqualTo}},
			},
			Comment: "socket(" + f + ")",
		})
	}
	return rules, nil
}

// signalReturnNames returns the signalReturn syscalls not already recorded that are
// real syscalls on at least one of archs.
func signalReturnNames(recorded map[string]bool, archs []specs.Arch) []string {
	var names []string
	for _, n := range signalReturn {
		if !recorded[n] && realOnSome(n, archs) {
			names = append(names, n)
		}
	}
	return names
}

func knownToLibseccomp(name string, archs []specs.Arch) bool {
	for _, a := range archs {
		sa, err := profiles.ScmpArch(string(a))
		if err != nil {
			return false
		}
		if _, err := profiles.SyscallOnArch(name, sa); err != nil {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
