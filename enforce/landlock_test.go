package enforce

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/profiles"
)

func TestLandlockRules(t *testing.T) {
	c, err := landlockRules(profiles.LandlockPlan{
		Paths: []profiles.LandlockPath{
			{Path: "/etc/hosts", Access: []string{"read_file"}},
			{Path: "/w", Access: []string{"make_reg", "remove_file", "refer"}},
		},
		TCP: profiles.LandlockTCP{Bind: []uint16{8080}, Connect: []uint16{5432}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &landlockConfig{
		Paths: []pathRule{
			{Path: "/etc/hosts", Access: ll.AccessFSReadFile},
			{Path: "/w", Access: ll.AccessFSMakeReg | ll.AccessFSRemoveFile | ll.AccessFSRefer},
		},
		BindTCP: []uint16{8080}, ConnectTCP: []uint16{5432},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	for _, tc := range []struct {
		rule profiles.LandlockPath
		want string
	}{
		{profiles.LandlockPath{Path: "w", Access: []string{"read_file"}}, "not an absolute path"},
		{profiles.LandlockPath{Path: "/w", Access: []string{"read_everything"}}, `unknown Landlock right "read_everything"`},
		// A right this tailor does not restrict cannot be granted either.
		{profiles.LandlockPath{Path: "/w", Access: []string{"resolve_unix"}}, "does not restrict"},
	} {
		if _, err := landlockRules(profiles.LandlockPlan{Paths: []profiles.LandlockPath{tc.rule}}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.rule, err, tc.want)
		}
	}
}

// The hand-written test bundle's Landlock plan is the one generate computes from its
// file rules and execs.
func TestTestBundlePlanIsGenerated(t *testing.T) {
	data, err := os.ReadFile("../testdata/enforce/bundle/bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	var b profiles.Bundle
	if err := json.Unmarshal(bytes.ReplaceAll(data, []byte("@TESTDIR@"), []byte("/TESTDIR")), &b); err != nil {
		t.Fatal(err)
	}
	plan, err := generate.PlanLandlock(generate.PlanInput{Files: b.Files, Execs: b.Execs, Failed: b.Failed, Network: b.Network})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan, b.Landlock) {
		t.Errorf("testdata/enforce/bundle/bundle.json's plan:\n%+v\ngenerate computes:\n%+v", b.Landlock, plan)
	}
}

// On kernels with an older Landlock, the report says what the plan cannot get: TCP
// ports before ABI 4, refer (renames across directories) before ABI 2, which is
// dropped rather than letting go-landlock drop the whole ruleset.
func TestPlanOnOlderLandlock(t *testing.T) {
	p := &Policy{Dir: "/b", Seccomp: &profiles.Seccomp{}, Bundle: profiles.Bundle{Name: "t", Landlock: profiles.LandlockPlan{
		Paths: []profiles.LandlockPath{
			{Path: "/nonexistent-tailor-test/w", Access: []string{"make_reg", "refer"}},
			{Path: "/nonexistent-tailor-test/x", Access: []string{"read_file"}},
		},
		TCP: profiles.LandlockTCP{Bind: []uint16{80}},
	}}}
	for _, tc := range []struct {
		abi       int
		want      []string
		wantRefer bool
	}{
		{1, []string{"skipped, missing now: /nonexistent-tailor-test/w, /nonexistent-tailor-test/x", "refer needs Landlock ABI 2", "landlock net: not enforced: Landlock ABI v1 has no TCP port rules"}, false},
		{3, []string{"landlock net: not enforced: Landlock ABI v3"}, true},
		{4, []string{"landlock net: enforced: TCP bind to ports 80; connect to ports none"}, true},
	} {
		pl, err := makePlan(p, Host{LandlockABI: tc.abi}, &Options{Mode: ModeEnforce})
		if err != nil {
			t.Fatal(err)
		}
		report := strings.Join(pl.report, "\n")
		for _, w := range tc.want {
			if !strings.Contains(report, w) {
				t.Errorf("ABI %d: report lacks %q:\n%s", tc.abi, w, report)
			}
		}
		if got := pl.config.Landlock.Paths[0].Access&ll.AccessFSRefer != 0; got != tc.wantRefer {
			t.Errorf("ABI %d: refer kept %v, want %v", tc.abi, got, tc.wantRefer)
		}
	}
}
