// Package deploy holds the Kubernetes manifests of the node agent; this test decodes
// them strictly with the upstream API types.
package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/tailor-sec/tailor/agent"
)

// objects decodes every YAML document of every manifest strictly (unknown fields
// refused) into the k8s.io/api type of its kind.
func objects(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range regexp.MustCompile(`(?m)^---\n`).Split(string(data), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var head struct{ APIVersion, Kind string }
			if err := json.Unmarshal(js, &head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			case "v1 ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "apps/v1 DaemonSet":
				obj = &appsv1.DaemonSet{}
			case "rbac.authorization.k8s.io/v1 Role", "rbac.authorization.k8s.io/v1 ClusterRole":
				obj = &rbacv1.ClusterRole{}
			case "rbac.authorization.k8s.io/v1 RoleBinding", "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
				obj = &rbacv1.ClusterRoleBinding{}
			default:
				t.Fatalf("%s: unexpected %s %s", f, head.APIVersion, head.Kind)
			}
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(obj); err != nil {
				t.Fatalf("%s: strict decode into %T: %v", f, obj, err)
			}
			if _, dup := out[head.Kind]; dup {
				t.Fatalf("two %s", head.Kind)
			}
			out[head.Kind] = obj
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	objs := objects(t)
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range objs {
			if !yield(k) {
				return
			}
		}
	})
	// The agent calls no Kubernetes API: the least RBAC is none at all.
	if want := []string{"ConfigMap", "DaemonSet", "Namespace", "ServiceAccount"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds %v, want %v (no RBAC objects: the agent needs none)", kinds, want)
	}
	ns := objs["Namespace"].(*corev1.Namespace)
	sa := objs["ServiceAccount"].(*corev1.ServiceAccount)
	cm := objs["ConfigMap"].(*corev1.ConfigMap)
	ds := objs["DaemonSet"].(*appsv1.DaemonSet)
	for _, m := range []string{sa.Namespace, cm.Namespace, ds.Namespace} {
		if m != ns.Name {
			t.Errorf("object in namespace %q, want %q", m, ns.Name)
		}
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the service account mounts a token the agent never uses")
	}

	pod := ds.Spec.Template.Spec
	if pod.ServiceAccountName != sa.Name || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod service account %q, token %v", pod.ServiceAccountName, pod.AutomountServiceAccountToken)
	}
	if !pod.HostPID || pod.HostNetwork || pod.HostIPC {
		t.Errorf("host namespaces: pid %v network %v ipc %v, want pid only", pod.HostPID, pod.HostNetwork, pod.HostIPC)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Fatalf("security context %+v", sc)
	}
	if want := []corev1.Capability{"BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}; !slices.Equal(sc.Capabilities.Add, want) {
		t.Errorf("capabilities %v, want %v", sc.Capabilities.Add, want)
	}
	// Kubernetes' validation refuses allowPrivilegeEscalation false beside SYS_ADMIN.
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation false with CAP_SYS_ADMIN is refused by the API server")
	}

	// Host paths: only these, read-only except the Docker socket (a socket is
	// written to by connecting, whatever the mount says).
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	hostPaths := map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("mount of missing volume %s", m.Name)
		}
		if v.HostPath == nil {
			continue
		}
		hostPaths[v.HostPath.Path] = m.MountPath
		if v.HostPath.Path != "/var/run/docker.sock" && !m.ReadOnly {
			t.Errorf("host path %s mounted writable", v.HostPath.Path)
		}
	}
	want := map[string]string{"/var/run/docker.sock": "/var/run/docker.sock", "/sys/kernel/btf": "/sys/kernel/btf", "/sys/kernel/tracing": "/sys/kernel/tracing"}
	if len(hostPaths) != len(want) {
		t.Errorf("host paths %v, want %v", hostPaths, want)
	}
	for h, m := range want {
		if hostPaths[h] != m {
			t.Errorf("host path %s mounted at %q, want %s", h, hostPaths[h], m)
		}
	}

	// The command line names the mounted config, and the config is one the agent
	// accepts.
	args := strings.Join(c.Args, " ")
	if c.Args[0] != "agent" || !strings.Contains(args, "--config /etc/tailor/agent.yaml") {
		t.Errorf("args %q", args)
	}
	cfgMounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/tailor" && volumes[m.Name].ConfigMap != nil && volumes[m.Name].ConfigMap.Name == cm.Name {
			cfgMounted = true
		}
	}
	if !cfgMounted {
		t.Error("the ConfigMap is not mounted at /etc/tailor")
	}
	if _, err := agent.ParseConfig([]byte(cm.Data["agent.yaml"])); err != nil {
		t.Errorf("agent.yaml: %v", err)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9464 || !strings.Contains(args, "--metrics 0.0.0.0:9464") {
		t.Errorf("metrics port %+v, args %q", c.Ports, args)
	}
}
