// Package fail holds the sentinel errors that every tailor command maps to a documented
// exit code (docs/exit-codes.md). Packages wrap them with context; cmd/tailor turns the
// outermost error into one line on stderr and the code below.
package fail

import (
	"errors"
	"os/exec"
	"strconv"
)

// Sentinels, one per exit code. Wrap with fmt.Errorf("...: %w", fail.ErrX) or
// fmt.Errorf("%w: ...", fail.ErrX).
var (
	// ErrBadInput: bad flags, a file that is not a valid recording or bundle, a command
	// that does not exist. Exit 2.
	ErrBadInput = errors.New("bad input")
	// ErrPrivilege: tailor lacks root or CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN. Exit 3.
	ErrPrivilege = errors.New("insufficient privilege")
	// ErrKernel: the kernel lacks something the tracer needs (BTF, a hook, tracefs). Exit 4.
	ErrKernel = errors.New("kernel feature missing")
	// ErrLoss: observations were lost: learn without --allow-loss (the recording is
	// written and marked incomplete), enforce and watch with --fail-on-loss. Exit 5.
	ErrLoss = errors.New("observations lost")
	// ErrDocker: the Docker daemon is unreachable, or a container or image is missing. Exit 6.
	ErrDocker = errors.New("docker")
	// ErrAnomaly: enforce or watch saw an anomaly and --fail-on-anomaly was given. Exit 7.
	ErrAnomaly = errors.New("anomaly")
	// ErrWorkload: the --workload command failed. The recording is still written. Exit 8.
	ErrWorkload = errors.New("workload failed")
	// ErrRefused: enforce refused to run the target because a profile could not be
	// applied as written (never widen silently). Exit 9.
	ErrRefused = errors.New("refused")
	// ErrFindings: tailor audit found something at or above --fail-on. Exit 10.
	ErrFindings = errors.New("audit findings")
	// ErrInterrupted: Ctrl-C or SIGTERM. What was recorded is saved, marked incomplete.
	// Exit 130.
	ErrInterrupted = errors.New("interrupted")
)

// Code returns the exit code for err: 0 for nil, the code of the first sentinel found
// in err's chain, the exit status of a target process (*exec.ExitError) when enforce
// passes it through, and 1 for anything else.
func Code(err error) int {
	if err == nil {
		return 0
	}
	var status *ExitStatus
	if errors.As(err, &status) {
		return status.Code
	}
	for _, c := range []struct {
		err  error
		code int
	}{
		{ErrBadInput, 2}, {ErrPrivilege, 3}, {ErrKernel, 4}, {ErrLoss, 5}, {ErrDocker, 6},
		{ErrAnomaly, 7}, {ErrWorkload, 8}, {ErrRefused, 9}, {ErrFindings, 10}, {ErrInterrupted, 130},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	return 1
}

// ExitStatus carries a target's own exit status through to tailor's exit code, for
// commands (enforce) whose status is the target's. Quiet is true when there is nothing
// to print: the target already spoke for itself.
type ExitStatus struct {
	Code  int
	Quiet bool
}

func (e *ExitStatus) Error() string { return "target exited with status " + strconv.Itoa(e.Code) }
