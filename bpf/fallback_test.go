package bpf

import (
	"testing"

	"github.com/tailor-sec/tailor/internal/testpriv"
)

// The raw_tp programs are the fallback where the kernel refuses tp_btf: this kernel
// takes tp_btf, so only this test makes the verifier check the fallback set.
func TestRawFallbackVerifies(t *testing.T) {
	testpriv.RequireRoot(t)
	spec, err := loadTracer()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := newCollection(spec, rawSet, "")
	if err != nil {
		t.Fatalf("the raw_tp programs do not load: %v", err)
	}
	coll.Close()
}
