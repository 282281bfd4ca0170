package generate

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"sigs.k8s.io/yaml"

	"github.com/tailor-sec/tailor/profiles"
)

// capabilitiesFile is capabilities.json: drop everything, add back what was needed,
// in Docker's spelling (CAP_CHOWN).
type capabilitiesFile struct {
	Drop []string `json:"drop"`
	Add  []string `json:"add"`
}

// renderDockerRun writes the docker run flags that apply the bundle.
func renderDockerRun(name, dir string, caps []string) string {
	if dir == "" {
		dir = "."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Load the AppArmor profile first (needs AppArmor in the host kernel):\n")
	fmt.Fprintf(&b, "#   apparmor_parser -r -W %s\n", shellQuote(filepath.Join(dir, profiles.BundleAppArmorFile)))
	flags := []string{
		"--security-opt", "seccomp=" + shellQuote(filepath.Join(dir, profiles.BundleSeccompFile)),
		"--security-opt", "apparmor=" + name,
		"--security-opt", "no-new-privileges",
		"--cap-drop", "ALL",
	}
	for _, c := range caps {
		flags = append(flags, "--cap-add", c)
	}
	b.WriteString(strings.Join(flags, " "))
	b.WriteString("\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=+:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// spoProfile is the Security Profiles Operator SeccompProfile resource. Its spec has
// no defaultErrnoRet; runc returns EPERM for an errno default without one, which is
// what seccomp.json says explicitly.
type spoProfile struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   spoMetadata `json:"metadata"`
	Spec       spoSpec     `json:"spec"`
}

type spoMetadata struct {
	Name string `json:"name"`
}

type spoSpec struct {
	DefaultAction specs.LinuxSeccompAction `json:"defaultAction"`
	Architectures []specs.Arch             `json:"architectures"`
	Syscalls      []spoSyscall             `json:"syscalls"`
}

type spoSyscall struct {
	Names    []string                 `json:"names"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []spoArg                 `json:"args,omitempty"`
}

// spoArg always writes valueTwo, as the operator's CRD expects every field.
type spoArg struct {
	Index    uint                       `json:"index"`
	Value    uint64                     `json:"value"`
	ValueTwo uint64                     `json:"valueTwo"`
	Op       specs.LinuxSeccompOperator `json:"op"`
}

func renderSPO(name, api string, p *profiles.Seccomp) ([]byte, error) {
	res := spoProfile{
		APIVersion: spoGroup + "/" + api,
		Kind:       "SeccompProfile",
		Metadata:   spoMetadata{Name: name},
		Spec:       spoSpec{DefaultAction: p.DefaultAction, Architectures: p.Architectures},
	}
	for _, r := range p.Syscalls {
		s := spoSyscall{Names: r.Names, Action: r.Action, ErrnoRet: r.ErrnoRet}
		for _, a := range r.Args {
			s.Args = append(s.Args, spoArg{Index: a.Index, Value: a.Value, ValueTwo: a.ValueTwo, Op: a.Op})
		}
		res.Spec.Syscalls = append(res.Spec.Syscalls, s)
	}
	body, err := yaml.Marshal(res)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Security Profiles Operator resource: kubectl apply -f seccompprofile.yaml\n"), body...), nil
}

// podSpecSnippet is a pod spec fragment: the container's fields to merge into the
// target's container, and the volumes its mounts need beside it.
type podSpecSnippet struct {
	Containers []podSnippet `json:"containers"`
	Volumes    []podVolume  `json:"volumes,omitempty"`
}

type podSnippet struct {
	// Name is a placeholder: the name of the container the fields are merged into.
	Name            string             `json:"name"`
	SecurityContext podSecurityContext `json:"securityContext"`
	Resources       *podResources      `json:"resources,omitempty"`
	VolumeMounts    []podVolumeMount   `json:"volumeMounts,omitempty"`
	volumes         []podVolume
}

type podSecurityContext struct {
	AllowPrivilegeEscalation bool           `json:"allowPrivilegeEscalation"`
	AppArmorProfile          localProfile   `json:"appArmorProfile"`
	Capabilities             podCapabilites `json:"capabilities"`
	ReadOnlyRootFilesystem   bool           `json:"readOnlyRootFilesystem,omitempty"`
	RunAsNonRoot             bool           `json:"runAsNonRoot,omitempty"`
	RunAsUser                *int64         `json:"runAsUser,omitempty"`
	RunAsGroup               *int64         `json:"runAsGroup,omitempty"`
	SeccompProfile           localProfile   `json:"seccompProfile"`
}

type podResources struct {
	Limits map[string]string `json:"limits"`
}

type podVolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
}

type podVolume struct {
	Name     string          `json:"name"`
	EmptyDir *podEmptyDir    `json:"emptyDir,omitempty"`
	PVC      *podClaimSource `json:"persistentVolumeClaim,omitempty"`
}

type podEmptyDir struct {
	Medium    string `json:"medium,omitempty"`
	SizeLimit string `json:"sizeLimit,omitempty"`
}

type podClaimSource struct {
	ClaimName string `json:"claimName"`
}

type localProfile struct {
	Type             string `json:"type"`
	LocalhostProfile string `json:"localhostProfile"`
}

type podCapabilites struct {
	Drop []string `json:"drop"`
	Add  []string `json:"add,omitempty"`
}

// renderPodSecurityContext writes a container securityContext applying the bundle,
// with the hardened configuration h (nil for none): a read-only root with emptyDir
// volumes for the written directories, a non-root user, resource limits. Kubernetes
// spells capabilities without the CAP_ prefix.
func renderPodSecurityContext(name, api string, caps []string, h *profiles.Hardening) ([]byte, error) {
	var add []string
	for _, c := range caps {
		add = append(add, strings.TrimPrefix(c, "CAP_"))
	}
	snip := podSnippet{Name: "CONTAINER", SecurityContext: podSecurityContext{
		AllowPrivilegeEscalation: false,
		AppArmorProfile:          localProfile{Type: "Localhost", LocalhostProfile: name},
		Capabilities:             podCapabilites{Drop: []string{"ALL"}, Add: add},
		SeccompProfile:           localProfile{Type: "Localhost", LocalhostProfile: spoLocalhostPath(name, api)},
	}}
	if h != nil {
		hardenPod(&snip, h)
	}
	body, err := yaml.Marshal(podSpecSnippet{Containers: []podSnippet{snip}, Volumes: snip.volumes})
	if err != nil {
		return nil, err
	}
	head := "# Pod spec fragment: merge containers[0] into your container (its name), and the\n" +
		"# volumes into the pod's spec.volumes (Kubernetes 1.30+ for appArmorProfile).\n" +
		"# seccompProfile: the path the Security Profiles Operator " + spoGroup + "/" + api + " installs\n" +
		"# seccompprofile.yaml to; without the operator, copy seccomp.json to\n" +
		"# <kubelet root>/seccomp/tailor/" + name + ".json and use localhostProfile: tailor/" + name + ".json.\n" +
		"# appArmorProfile: load apparmor.profile on every node first.\n"
	if h != nil {
		head += "# resources, volumeMounts, volumes: the hardened configuration (hardened-run.txt says\n" +
			"# why); a persistentVolumeClaim named CLAIM-* is yours to create.\n"
	}
	return append([]byte(head), body...), nil
}

// hardenPod adds the hardened configuration to a container snippet.
func hardenPod(snip *podSnippet, h *profiles.Hardening) {
	sc := &snip.SecurityContext
	sc.ReadOnlyRootFilesystem = h.ReadOnly
	if uid, gid, ok := strings.Cut(h.User, ":"); ok {
		u, errU := strconv.ParseInt(uid, 10, 64)
		g, errG := strconv.ParseInt(gid, 10, 64)
		if errU == nil && errG == nil {
			sc.RunAsNonRoot, sc.RunAsUser, sc.RunAsGroup = u != 0, &u, &g
		}
	}
	limits := map[string]string{}
	if h.Memory > 0 {
		limits["memory"] = fmt.Sprintf("%dMi", h.Memory>>20)
	}
	if h.NanoCPUs > 0 {
		limits["cpu"] = fmt.Sprintf("%dm", h.NanoCPUs/1_000_000)
	}
	if len(limits) > 0 {
		snip.Resources = &podResources{Limits: limits}
	}
	for i, t := range h.Tmpfs {
		v := fmt.Sprintf("tmp-%d", i)
		snip.VolumeMounts = append(snip.VolumeMounts, podVolumeMount{Name: v, MountPath: t.Path})
		snip.volumes = append(snip.volumes, podVolume{Name: v, EmptyDir: &podEmptyDir{Medium: "Memory", SizeLimit: fmt.Sprintf("%dMi", t.Size>>20)}})
	}
	for i, d := range h.Volumes {
		v := fmt.Sprintf("data-%d", i)
		snip.VolumeMounts = append(snip.VolumeMounts, podVolumeMount{Name: v, MountPath: d.Path})
		snip.volumes = append(snip.volumes, podVolume{Name: v, PVC: &podClaimSource{ClaimName: "CLAIM-" + v}})
	}
}
