package bpf

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tailor-sec/tailor/internal/testpriv"
)

// The verifier's work is tailor's start-up time: every learn, enforce and watch loads
// the programs before the target starts. The heavy helpers (emit_op, join_path) are
// global functions, verified once each instead of once per path that reaches them;
// as static subprograms sys_exit took 358,582 instructions (about 2 s here). This
// budget catches a change that brings that back.
const verifierBudget = 100000

func TestVerifierBudget(t *testing.T) {
	testpriv.RequireRoot(t)
	spec, err := loadTracer()
	if err != nil {
		t.Fatal(err)
	}
	processed := regexp.MustCompile(`processed (\d+) insns`)
	for _, set := range []progSet{btfSet, rawSet} {
		s := spec.Copy()
		keep := map[string]bool{set.sysEnter: true, set.sysExit: true, set.fork: true, set.exit: true, set.exec: true}
		for name := range s.Programs {
			if !keep[name] {
				delete(s.Programs, name)
			}
		}
		coll, err := ebpf.NewCollectionWithOptions(s, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
		if err != nil {
			t.Fatalf("%s programs: %v", set.flavour, err)
		}
		for name, p := range coll.Programs {
			m := processed.FindStringSubmatch(p.VerifierLog)
			if m == nil {
				t.Errorf("%s: no instruction count in the verifier's log %q", name, p.VerifierLog)
				continue
			}
			n, _ := strconv.Atoi(m[1])
			t.Logf("%s: %d instructions verified", name, n)
			if n > verifierBudget {
				t.Errorf("%s: the verifier processed %d instructions, over the budget of %d: a heavy helper is verified per call path again (make it a global function)", name, n, verifierBudget)
			}
		}
		coll.Close()
	}
}
