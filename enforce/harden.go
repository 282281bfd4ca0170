package enforce

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// NoHardenParts are the parts of the hardened run configuration --no-harden can leave
// out. no-new-privileges is not one: the profiles rely on it.
var NoHardenParts = []string{profiles.HardenReadOnly, profiles.HardenUser, profiles.HardenLimits, profiles.HardenPorts, profiles.HardenNetwork}

// ParseNoHarden reads --no-harden's comma-separated parts ("all" for every one).
func ParseNoHarden(list string) (map[string]bool, error) {
	skip := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
		case p == "all":
			for _, q := range NoHardenParts {
				skip[q] = true
			}
		case slices.Contains(NoHardenParts, p):
			skip[p] = true
		default:
			return nil, fmt.Errorf("%w: --no-harden: unknown part %q (parts: %s, or all)", fail.ErrBadInput, p, strings.Join(NoHardenParts, ", "))
		}
	}
	return skip, nil
}

// hardenPlan is the bundle's hardened configuration less the parts left out.
type hardenPlan struct {
	h    *profiles.Hardening
	skip map[string]bool
}

// parts lists, in order, the parts the plan applies: those with flags, not skipped.
func (p hardenPlan) parts() []string {
	if p.h == nil {
		return nil
	}
	var out []string
	for _, part := range NoHardenParts {
		if p.skip[part] {
			continue
		}
		for _, f := range p.h.Facts {
			if f.Part == part && len(f.Flags) > 0 {
				out = append(out, part)
				break
			}
		}
	}
	return out
}

// facts are the facts behind one part, for the report and a failure's diagnosis.
func (p hardenPlan) facts(part string) []string {
	var out []string
	for _, f := range p.h.Facts {
		if f.Part == part && len(f.Flags) > 0 {
			out = append(out, strings.Join(f.Flags, " ")+": "+f.Fact)
		}
	}
	return out
}

// without is the plan with part left out too.
func (p hardenPlan) without(part string) hardenPlan {
	skip := map[string]bool{part: true}
	for k, v := range p.skip {
		skip[k] = v
	}
	return hardenPlan{h: p.h, skip: skip}
}

// report says, for the start-up report, what is applied and what is left out.
func (p hardenPlan) report() []string {
	if p.h == nil {
		return []string{"  hardening:    none in the bundle (a local command's, or learned without an observed section)"}
	}
	applied := p.parts()
	var out []string
	for _, part := range applied {
		for _, f := range p.facts(part) {
			out = append(out, fmt.Sprintf("  hardening:    [%s] %s", part, f))
		}
	}
	for _, part := range NoHardenParts {
		if p.skip[part] && len(p.facts(part)) > 0 {
			out = append(out, fmt.Sprintf("  hardening:    [%s] left out (--no-harden)", part))
		}
	}
	if len(applied) == 0 {
		out = append(out, "  hardening:    nothing applied")
	}
	return out
}

// adjust applies the plan to the copy's configuration.
func (p hardenPlan) adjust(cfg *container.Config, hc *container.HostConfig) {
	h := p.h
	for _, part := range p.parts() {
		switch part {
		case profiles.HardenReadOnly:
			hc.ReadonlyRootfs = true
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			for _, t := range h.Tmpfs {
				hc.Tmpfs[t.Path] = fmt.Sprintf("rw,size=%dm", t.Size>>20)
			}
			for _, v := range h.Volumes {
				// An anonymous volume: Docker fills it from the image, and removing the
				// copy removes it.
				hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Target: v.Path})
			}
		case profiles.HardenUser:
			cfg.User = h.User
		case profiles.HardenLimits:
			if h.Memory > 0 {
				hc.Memory = h.Memory
			}
			if h.PidsLimit > 0 {
				limit := h.PidsLimit
				hc.PidsLimit = &limit
			}
			if h.NanoCPUs > 0 {
				// generate capped it at the learning host's CPUs; this host may have
				// fewer.
				hc.NanoCPUs, _ = profiles.CapNanoCPUs(h.NanoCPUs, runtime.NumCPU())
			}
		case profiles.HardenPorts:
			for port, bindings := range hc.PortBindings {
				nb := slices.Clone(bindings)
				for i := range nb {
					nb[i].HostIP = "127.0.0.1"
				}
				hc.PortBindings[port] = nb
			}
		case profiles.HardenNetwork:
			hc.NetworkMode = "none"
			hc.PortBindings = nat.PortMap{}
			hc.Links = nil
		}
	}
}
