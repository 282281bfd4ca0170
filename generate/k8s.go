package generate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/tailor-sec/tailor/profiles"
)

// The Security Profiles Operator's API group and the versions tailor writes. The
// operator serves v1 since its 1.0 release; since 0.9 its profiles are
// cluster-scoped and installed as operator/NAME.json. v1beta1 (namespaced profiles,
// operator/NAMESPACE/NAME.json) is for clusters that still run an older operator.
const (
	spoGroup = "security-profiles-operator.x-k8s.io"
	// SPOAPIv1 is the operator 1.0 API (the default).
	SPOAPIv1 = "v1"
	// SPOAPIv1beta1 is the API of operators before 0.9.
	SPOAPIv1beta1 = "v1beta1"
	// spoLegacyNamespace is the namespace a v1beta1 profile is assumed to live in.
	spoLegacyNamespace = "default"
)

// SPOAPIs are the accepted values of Options.SPOAPI.
var SPOAPIs = []string{SPOAPIv1, SPOAPIv1beta1}

// spoLocalhostPath is the securityContext localhostProfile of a SeccompProfile the
// operator installed, relative to the kubelet's seccomp directory.
func spoLocalhostPath(name, api string) string {
	if api == SPOAPIv1beta1 {
		return "operator/" + spoLegacyNamespace + "/" + name + ".json"
	}
	return "operator/" + name + ".json"
}

// spoAppArmor is the operator's v1 AppArmorProfile. v1 has no raw policy field: the
// profile is an "abstract" of allow lists the operator renders itself.
type spoAppArmor struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   spoMetadata     `json:"metadata"`
	Spec       spoAppArmorSpec `json:"spec"`
}

type spoAppArmorSpec struct {
	Abstract spoAbstract `json:"abstract"`
	Mode     string      `json:"mode"`
}

type spoAbstract struct {
	Executable *spoExecutables `json:"executable,omitempty"`
	Filesystem *spoFilesystem  `json:"filesystem,omitempty"`
	Network    *spoNetwork     `json:"network,omitempty"`
	Capability *spoCapability  `json:"capability,omitempty"`
}

type spoExecutables struct {
	AllowedExecutables []string `json:"allowedExecutables,omitempty"`
}

type spoFilesystem struct {
	ReadOnlyPaths  []string `json:"readOnlyPaths,omitempty"`
	WriteOnlyPaths []string `json:"writeOnlyPaths,omitempty"`
	ReadWritePaths []string `json:"readWritePaths,omitempty"`
}

type spoNetwork struct {
	AllowRaw  *bool         `json:"allowRaw,omitempty"`
	Protocols *spoProtocols `json:"allowedProtocols,omitempty"`
}

type spoProtocols struct {
	AllowTCP *bool `json:"allowTcp,omitempty"`
	AllowUDP *bool `json:"allowUdp,omitempty"`
}

type spoCapability struct {
	AllowedCapabilities []string `json:"allowedCapabilities,omitempty"`
}

// spoPathPattern is the pattern the operator's CRD accepts for a path (its
// kubebuilder validation): no braces or brackets, so AppArmor alternations and
// character classes cannot be expressed.
var spoPathPattern = regexp.MustCompile(`^/(?:[a-zA-Z0-9_./*?+@ -]|@\{[a-zA-Z0-9_]+\})*$`)

// spoReadKinds are the access kinds that read; every other kind changes something.
var spoReadKinds = []string{profiles.AccessRead, profiles.AccessList, profiles.AccessExec}

// renderSPOAppArmor writes the operator's v1 AppArmorProfile for the bundle. Rules
// the abstract cannot express (a glob with braces or brackets) are left out and
// listed in the header: the profile is then narrower than apparmor.profile, never
// wider.
func renderSPOAppArmor(name string, m *profiles.Bundle) ([]byte, error) {
	var skipped []string
	keep := func(p string) bool {
		if spoPathPattern.MatchString(p) {
			return true
		}
		skipped = append(skipped, p)
		return false
	}
	var abs spoAbstract
	var execs []string
	for _, e := range m.Execs {
		if keep(e) {
			execs = append(execs, e)
		}
	}
	if len(execs) > 0 {
		abs.Executable = &spoExecutables{AllowedExecutables: execs}
	}
	var fs spoFilesystem
	for _, f := range m.Files {
		if !keep(f.Pattern) {
			continue
		}
		reads, writes := false, false
		for _, a := range f.Access {
			if slices.Contains(spoReadKinds, a) {
				reads = true
			} else {
				writes = true
			}
		}
		switch {
		case reads && writes:
			fs.ReadWritePaths = append(fs.ReadWritePaths, f.Pattern)
		case writes:
			fs.WriteOnlyPaths = append(fs.WriteOnlyPaths, f.Pattern)
		default:
			fs.ReadOnlyPaths = append(fs.ReadOnlyPaths, f.Pattern)
		}
	}
	if len(fs.ReadOnlyPaths)+len(fs.WriteOnlyPaths)+len(fs.ReadWritePaths) > 0 {
		abs.Filesystem = &fs
	}
	// The bundle records address families, not socket types: an inet family allows
	// both TCP and UDP.
	yes := true
	for _, f := range m.SocketFamilies {
		switch f {
		case "AF_INET", "AF_INET6":
			if abs.Network == nil {
				abs.Network = &spoNetwork{}
			}
			abs.Network.Protocols = &spoProtocols{AllowTCP: &yes, AllowUDP: &yes}
		case "AF_PACKET":
			if abs.Network == nil {
				abs.Network = &spoNetwork{}
			}
			abs.Network.AllowRaw = &yes
		}
	}
	if len(m.Capabilities) > 0 {
		abs.Capability = &spoCapability{}
		for _, c := range m.Capabilities {
			abs.Capability.AllowedCapabilities = append(abs.Capability.AllowedCapabilities, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
		}
	}
	body, err := yaml.Marshal(spoAppArmor{
		APIVersion: spoGroup + "/" + SPOAPIv1,
		Kind:       "AppArmorProfile",
		Metadata:   spoMetadata{Name: name},
		Spec:       spoAppArmorSpec{Abstract: abs, Mode: "Enforce"},
	})
	if err != nil {
		return nil, err
	}
	head := "# Security Profiles Operator AppArmorProfile (cluster-scoped): kubectl apply -f apparmorprofile.yaml\n" +
		"# The operator renders the profile from these allow lists; apparmor.profile is the full profile.\n"
	if len(skipped) > 0 {
		head += "# Left out (the operator's path pattern has no braces or brackets), so this profile is\n" +
			"# narrower than apparmor.profile there:\n"
		for _, s := range skipped {
			head += "#   " + s + "\n"
		}
	}
	return append([]byte(head), body...), nil
}

// spoBinding is the operator's ProfileBinding: every container of the namespace
// running image gets the profile.
type spoBinding struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   spoMetadata    `json:"metadata"`
	Spec       spoBindingSpec `json:"spec"`
}

type spoBindingSpec struct {
	ProfileRef spoProfileRef `json:"profileRef"`
	Image      string        `json:"image"`
}

type spoProfileRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// renderProfileBinding writes the ProfileBindings of image to the bundle's
// SeccompProfile and (v1) AppArmorProfile, as YAML documents. The binding lives in
// the namespace it is applied to (kubectl apply -n NAMESPACE).
func renderProfileBinding(name, api, image string) ([]byte, error) {
	kinds := []string{"SeccompProfile"}
	bindingAPI := "v1alpha1" // ProfileBinding's version beside SeccompProfile v1beta1
	if api == SPOAPIv1 {
		kinds = append(kinds, "AppArmorProfile")
		bindingAPI = SPOAPIv1
	}
	out := []byte(fmt.Sprintf("# Security Profiles Operator ProfileBinding: containers running %s in the namespace\n"+
		"# this is applied to get the profiles (kubectl apply -n NAMESPACE -f profilebinding.yaml).\n", image))
	for i, k := range kinds {
		body, err := yaml.Marshal(spoBinding{
			APIVersion: spoGroup + "/" + bindingAPI,
			Kind:       "ProfileBinding",
			Metadata:   spoMetadata{Name: name + "-" + strings.ToLower(strings.TrimSuffix(k, "Profile"))},
			Spec:       spoBindingSpec{ProfileRef: spoProfileRef{Kind: k, Name: name}, Image: image},
		})
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, body...)
	}
	return out, nil
}

// bindingImage is the image every container recording of the bundle ran, "" when
// there is none or more than one (a binding is for one image).
func bindingImage(m *profiles.Bundle) string {
	image := ""
	for _, s := range m.Sources {
		if s.Target.Container == nil || s.Target.Container.Image == "" {
			return ""
		}
		if image != "" && image != s.Target.Container.Image {
			return ""
		}
		image = s.Target.Container.Image
	}
	return image
}
