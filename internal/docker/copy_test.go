package docker

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

func TestLearningProfileIsAllowAllJSON(t *testing.T) {
	var p struct {
		DefaultAction string   `json:"defaultAction"`
		Architectures []string `json:"architectures"`
		Syscalls      []any    `json:"syscalls"`
	}
	if err := json.Unmarshal([]byte(LearningProfile()), &p); err != nil {
		t.Fatalf("learning profile is not JSON: %v", err)
	}
	if p.DefaultAction != "SCMP_ACT_ALLOW" || len(p.Syscalls) != 0 {
		t.Fatalf("learning profile %s does not allow everything", LearningProfile())
	}
}

func TestLearningSecurityOpt(t *testing.T) {
	learn := "seccomp=" + LearningProfile()
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{learn}},
		{[]string{"seccomp=unconfined"}, []string{learn}},
		{[]string{"seccomp:unconfined", "no-new-privileges"}, []string{"no-new-privileges", learn}},
		{[]string{"apparmor=docker-default", `seccomp={"defaultAction":"SCMP_ACT_ERRNO"}`, "label=disable"}, []string{"apparmor=docker-default", "label=disable", learn}},
	} {
		if got := learningSecurityOpt(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("learningSecurityOpt(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCopyPortBindings(t *testing.T) {
	orig := nat.PortMap{
		"80/tcp":  {{HostIP: "127.0.0.1", HostPort: "8080"}},
		"53/udp":  {{HostPort: "5353"}, {HostIP: "::1", HostPort: "5353"}},
		"443/tcp": {{HostIP: "0.0.0.0", HostPort: ""}},
	}
	same := copyPortBindings(orig, false)
	if reflectJSON(t, same) != reflectJSON(t, orig) {
		t.Errorf("stopped original: bindings %v, want %v", same, orig)
	}
	eph := copyPortBindings(orig, true)
	for port, bs := range eph {
		for i, b := range bs {
			if b.HostPort != "" || b.HostIP != orig[port][i].HostIP {
				t.Errorf("running original: %s binding %d = %+v, want host IP %q and an ephemeral port", port, i, b, orig[port][i].HostIP)
			}
		}
	}
	if orig["80/tcp"][0].HostPort != "8080" {
		t.Error("copyPortBindings changed the original's map")
	}
	if copyPortBindings(nil, true) != nil {
		t.Error("no bindings must stay no bindings")
	}
}

func TestNetworkingConfig(t *testing.T) {
	id := strings.Repeat("ab", 32)
	inspect := func(mode string) container.InspectResponse {
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: id, HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)}},
			NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
				"backend": {
					Aliases:    []string{id[:12], "db"},
					Links:      []string{"cache:cache"},
					IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.9.0.5"},
					IPAddress:  "10.9.0.5",
					MacAddress: "02:42:0a:09:00:05",
				},
			}},
		}
	}
	for _, mode := range []string{"none", "host", "bridge", "default", "container:" + id} {
		if nc := networkingConfig(inspect(mode)); nc != nil {
			t.Errorf("mode %s: got endpoint settings %+v, want none", mode, nc)
		}
	}
	nc := networkingConfig(inspect("backend"))
	ep := nc.EndpointsConfig["backend"]
	if ep == nil || !slices.Equal(ep.Aliases, []string{"db"}) || !slices.Equal(ep.Links, []string{"cache:cache"}) ||
		ep.IPAMConfig != nil || ep.IPAddress != "" || ep.MacAddress != "" {
		t.Errorf("user-defined network: %+v, want alias db and the link only", ep)
	}
}
