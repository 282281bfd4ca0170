package enforce

import (
	"fmt"
	"os"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/tailor-sec/tailor/profiles"
)

// landlockConfig is bundle.json's Landlock plan in the form the launcher child
// applies: rights as bit sets, ports as port rules.
type landlockConfig struct {
	Paths      []pathRule `json:"paths"`
	BindTCP    []uint16   `json:"bindTCP"`
	ConnectTCP []uint16   `json:"connectTCP"`
}

// pathRule is one Landlock path-beneath rule: access granted on Path and, when Path
// is a directory, everything beneath it.
type pathRule struct {
	Path   string               `json:"path"`
	Access landlock.AccessFSSet `json:"access"`
}

// handledFS are the file rights enforcement restricts: every right up to Landlock
// ABI 5 (ioctl on devices). Later ABIs restrict unix socket connects by path (ABI 9),
// which the plan does not grant yet; best effort drops what the kernel lacks.
var handledFS = landlock.V5.HandledAccessFS

// handledNet are the network rights restricted: TCP bind and connect (ABI 4). UDP
// (ABI 10) is not restricted.
var handledNet = landlock.V4.HandledAccessNet

// fileRights are the rights Landlock accepts on a rule for a non-directory.
const fileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// landlockRules checks a bundle's Landlock plan and turns it into what the launcher
// applies. It is pure: whether a path exists is decided when the rules are applied.
// Paths beneath @{cwd} pass the check: Run resolves them before it plans.
func landlockRules(plan profiles.LandlockPlan) (*landlockConfig, error) {
	c := &landlockConfig{Paths: []pathRule{}, BindTCP: plan.TCP.Bind, ConnectTCP: plan.TCP.Connect}
	for _, p := range plan.Paths {
		if !strings.HasPrefix(p.Path, "/") && p.Path != cwdVar && !strings.HasPrefix(p.Path, cwdVar+"/") {
			return nil, fmt.Errorf("landlock rule %q is not an absolute path nor beneath %s", p.Path, cwdVar)
		}
		access, err := profiles.ParseLandlockRights(p.Access)
		if err != nil {
			return nil, fmt.Errorf("landlock rule %q: %w", p.Path, err)
		}
		if extra := access &^ handledFS; extra != 0 {
			return nil, fmt.Errorf("landlock rule %q grants %v, which this tailor does not restrict", p.Path, extra)
		}
		c.Paths = append(c.Paths, pathRule{Path: p.Path, Access: access})
	}
	return c, nil
}

// applyLandlock restricts the calling process (all its threads) to c. Rules on
// non-directories keep only the rights Landlock allows on files; a path that vanished
// since the parent checked it is skipped (it cannot be opened then either). TCP bind
// and connect are restricted to the plan's ports where the kernel has Landlock ABI 4.
func applyLandlock(c *landlockConfig) error {
	var lr []landlock.Rule
	for _, r := range c.Paths {
		access := r.Access
		fi, err := os.Stat(r.Path)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			access &= fileRights
		}
		if access != 0 {
			lr = append(lr, landlock.PathAccess(access, r.Path).IgnoreIfMissing())
		}
	}
	for _, p := range c.BindTCP {
		lr = append(lr, landlock.BindTCP(p))
	}
	for _, p := range c.ConnectTCP {
		lr = append(lr, landlock.ConnectTCP(p))
	}
	cfg, err := landlock.NewConfig(handledFS, handledNet)
	if err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	if err := cfg.BestEffort().Restrict(lr...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	return nil
}
