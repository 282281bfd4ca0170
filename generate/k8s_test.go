package generate

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tailor-sec/tailor/profiles"
)

// The operator's API types live in its main module, whose imports take in
// controller-runtime, gRPC and the operator's internal packages: too much to add to
// tailor for a test. These structs are the schema of the v1 and v1beta1 CRDs
// (sigs.k8s.io/security-profiles-operator api/seccompprofile, apparmorprofile,
// profilebinding), field names and types only; strict decoding into them refuses any
// field the CRD does not have, and checkSPO checks the required fields and enums.
type crdMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

type crdSeccompProfile struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Metadata   crdMeta `json:"metadata"`
	Spec       struct {
		Disabled         bool     `json:"disabled,omitempty"`
		BaseProfileName  string   `json:"baseProfileName,omitempty"`
		DefaultAction    string   `json:"defaultAction"`
		Architectures    []string `json:"architectures,omitempty"`
		ListenerPath     string   `json:"listenerPath,omitempty"`
		ListenerMetadata string   `json:"listenerMetadata,omitempty"`
		Flags            []string `json:"flags,omitempty"`
		Syscalls         []struct {
			Names    []string `json:"names"`
			Action   string   `json:"action"`
			ErrnoRet int32    `json:"errnoRet,omitempty"`
			Args     []struct {
				Index    *int32 `json:"index"`
				Value    int64  `json:"value,omitempty"`
				ValueTwo int64  `json:"valueTwo,omitempty"`
				Op       string `json:"op"`
			} `json:"args,omitempty"`
		} `json:"syscalls,omitempty"`
	} `json:"spec"`
}

type crdAppArmorProfile struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Metadata   crdMeta `json:"metadata"`
	Spec       struct {
		Disabled bool `json:"disabled,omitempty"`
		Abstract struct {
			Executable *struct {
				AllowedExecutables []string `json:"allowedExecutables,omitempty"`
				AllowedLibraries   []string `json:"allowedLibraries,omitempty"`
			} `json:"executable,omitempty"`
			Filesystem *struct {
				ReadOnlyPaths  []string `json:"readOnlyPaths,omitempty"`
				WriteOnlyPaths []string `json:"writeOnlyPaths,omitempty"`
				ReadWritePaths []string `json:"readWritePaths,omitempty"`
			} `json:"filesystem,omitempty"`
			Network *struct {
				AllowRaw  *bool `json:"allowRaw,omitempty"`
				Protocols *struct {
					AllowTCP *bool `json:"allowTcp,omitempty"`
					AllowUDP *bool `json:"allowUdp,omitempty"`
				} `json:"allowedProtocols,omitempty"`
			} `json:"network,omitempty"`
			Capability *struct {
				AllowedCapabilities []string `json:"allowedCapabilities,omitempty"`
			} `json:"capability,omitempty"`
		} `json:"abstract,omitempty"`
		Mode string `json:"mode,omitempty"`
	} `json:"spec"`
}

type crdProfileBinding struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Metadata   crdMeta `json:"metadata"`
	Spec       struct {
		ProfileRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"profileRef"`
		Image string `json:"image"`
	} `json:"spec"`
}

// strictYAML decodes one YAML document into v, refusing unknown fields.
func strictYAML(t *testing.T, file string, doc []byte, v any) {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: strict decode into %T: %v\n%s", file, v, err, doc)
	}
}

// yamlDocs splits a file at its "---" lines.
func yamlDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\n`).Split(string(data), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

var (
	seccompActions = []string{"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}
	seccompOps     = []string{"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}
	crdCapability  = regexp.MustCompile(`^(chown|dac_override|dac_read_search|fowner|fsetid|kill|setgid|setuid|setpcap|linux_immutable|net_bind_service|net_broadcast|net_admin|net_raw|ipc_lock|ipc_owner|sys_module|sys_rawio|sys_chroot|sys_ptrace|sys_pacct|sys_admin|sys_boot|sys_nice|sys_resource|sys_time|sys_tty_config|mknod|lease|audit_write|audit_control|setfcap|mac_override|mac_admin|syslog|wake_alarm|block_suspend|audit_read|perfmon|bpf|checkpoint_restore)$`)
)

// TestKubernetesManifestsDecodeStrictly generates every test recording's bundle at
// both operator API versions and decodes each Kubernetes manifest strictly: the
// container securityContext into k8s.io/api's Container, the operator's resources
// into the CRD schema above.
func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	for _, api := range SPOAPIs {
		for _, name := range recordingNames {
			t.Run(api+"/"+name, func(t *testing.T) {
				opt := testOptions(name)
				opt.SPOAPI = api
				b, err := Generate([]*profiles.Recording{loadRec(t, name)}, opt)
				if err != nil {
					t.Fatal(err)
				}
				pname := b.Manifest.Name
				wantPath := "operator/" + pname + ".json"
				if api == SPOAPIv1beta1 {
					wantPath = "operator/default/" + pname + ".json"
				}

				var spec corev1.PodSpec
				strictYAML(t, profiles.BundlePodSnippetFile, b.Files[profiles.BundlePodSnippetFile], &spec)
				if len(spec.Containers) != 1 {
					t.Fatalf("%d containers in the pod spec fragment", len(spec.Containers))
				}
				c := spec.Containers[0]
				for _, m := range c.VolumeMounts {
					if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
						t.Errorf("volume mount %s has no volume", m.Name)
					}
				}
				sc := c.SecurityContext
				switch {
				case sc == nil || sc.SeccompProfile == nil || sc.AppArmorProfile == nil || sc.Capabilities == nil || sc.AllowPrivilegeEscalation == nil:
					t.Fatalf("incomplete securityContext: %+v", sc)
				case sc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost || *sc.SeccompProfile.LocalhostProfile != wantPath:
					t.Errorf("seccompProfile %+v, want Localhost %s", sc.SeccompProfile, wantPath)
				case sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeLocalhost || *sc.AppArmorProfile.LocalhostProfile != pname:
					t.Errorf("appArmorProfile %+v", sc.AppArmorProfile)
				case *sc.AllowPrivilegeEscalation:
					t.Errorf("allowPrivilegeEscalation true")
				case !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
					t.Errorf("drop %v", sc.Capabilities.Drop)
				}
				if len(sc.Capabilities.Add) != len(b.Manifest.Capabilities) {
					t.Errorf("add %v, bundle %v", sc.Capabilities.Add, b.Manifest.Capabilities)
				}

				var sp crdSeccompProfile
				strictYAML(t, profiles.BundleSPOFile, b.Files[profiles.BundleSPOFile], &sp)
				if sp.APIVersion != spoGroup+"/"+api || sp.Kind != "SeccompProfile" || sp.Metadata.Name != pname {
					t.Errorf("SeccompProfile header %s %s %s", sp.APIVersion, sp.Kind, sp.Metadata.Name)
				}
				if !slices.Contains(seccompActions, sp.Spec.DefaultAction) || len(sp.Spec.Syscalls) == 0 {
					t.Errorf("defaultAction %q, %d rules", sp.Spec.DefaultAction, len(sp.Spec.Syscalls))
				}
				for _, r := range sp.Spec.Syscalls {
					if len(r.Names) == 0 || !slices.Contains(seccompActions, r.Action) || len(r.Args) > 6 {
						t.Errorf("rule %+v", r)
					}
					for _, a := range r.Args {
						if a.Index == nil || *a.Index > 5 || !slices.Contains(seccompOps, a.Op) || a.Value < 0 || a.ValueTwo < 0 {
							t.Errorf("arg %+v", a)
						}
					}
				}

				aa, ok := b.Files[profiles.BundleSPOAppArmorFile]
				if ok != (api == SPOAPIv1) {
					t.Fatalf("apparmorprofile.yaml written: %v at %s", ok, api)
				}
				if ok {
					var ap crdAppArmorProfile
					strictYAML(t, profiles.BundleSPOAppArmorFile, aa, &ap)
					if ap.APIVersion != spoGroup+"/v1" || ap.Kind != "AppArmorProfile" || ap.Metadata.Name != pname || ap.Spec.Mode != "Enforce" {
						t.Errorf("AppArmorProfile header %+v", ap)
					}
					var paths []string
					if e := ap.Spec.Abstract.Executable; e != nil {
						paths = append(paths, e.AllowedExecutables...)
					}
					if f := ap.Spec.Abstract.Filesystem; f != nil {
						paths = slices.Concat(paths, f.ReadOnlyPaths, f.WriteOnlyPaths, f.ReadWritePaths)
					}
					if len(paths) == 0 {
						t.Errorf("no paths in the AppArmorProfile")
					}
					for _, p := range paths {
						if !spoPathPattern.MatchString(p) {
							t.Errorf("path %q does not match the CRD's pattern", p)
						}
					}
					if c := ap.Spec.Abstract.Capability; c != nil {
						for _, name := range c.AllowedCapabilities {
							if !crdCapability.MatchString(name) {
								t.Errorf("capability %q does not match the CRD's pattern", name)
							}
						}
					}
				}

				pb, ok := b.Files[profiles.BundleProfileBindingFile]
				image := bindingImage(&b.Manifest)
				if ok != (image != "") {
					t.Fatalf("profilebinding.yaml written: %v, image %q", ok, image)
				}
				if ok {
					docs := yamlDocs(pb)
					wantKinds := []string{"SeccompProfile", "AppArmorProfile"}
					wantAPI := "v1"
					if api == SPOAPIv1beta1 {
						wantKinds, wantAPI = wantKinds[:1], "v1alpha1"
					}
					if len(docs) != len(wantKinds) {
						t.Fatalf("%d bindings, want %d", len(docs), len(wantKinds))
					}
					for i, d := range docs {
						var bind crdProfileBinding
						strictYAML(t, profiles.BundleProfileBindingFile, d, &bind)
						if bind.APIVersion != spoGroup+"/"+wantAPI || bind.Kind != "ProfileBinding" || bind.Spec.Image != image ||
							bind.Spec.ProfileRef.Kind != wantKinds[i] || bind.Spec.ProfileRef.Name != pname || bind.Metadata.Name == "" {
							t.Errorf("binding %+v", bind)
						}
					}
				}
			})
		}
	}
	if _, err := Generate([]*profiles.Recording{loadRec(t, "caps")}, Options{SPOAPI: "v2"}); err == nil {
		t.Errorf("--spo-api v2 accepted")
	}
}

// TestStrictDecodingRefusesUnknownFields: the decoder this test relies on refuses a
// field the schema does not have (a v1beta1-only field would be caught).
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	var c corev1.Container
	js, _ := yaml.YAMLToJSON([]byte("securityContext:\n  seccompProfile:\n    type: Localhost\n    localhostProfile: x\n  bogus: true\n"))
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err == nil {
		t.Fatal("unknown field accepted")
	}
}
