package profiles

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// secretEnv is a container environment with secrets in every shape the redaction
// knows, and values that must be kept.
var secretEnv = map[string]struct {
	value string
	kept  bool
}{
	"DB_PASSWORD":        {"hunter2-correct-horse", false},
	"API_TOKEN":          {"t0k3n-value-123", false},
	"AWS_SECRET_ACCESS":  {"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", false},
	"MYSQL_ROOT_PASSWD":  {"rootpw", false},
	"GITHUB_AUTH":        {"ghp-authvalue", false},
	"SSH_PRIVATE":        {"not-a-key-but-private", false},
	"SERVICE_CREDENTIAL": {"cred-value-42", false},
	"TLS_CERT_PEM":       {"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----", false},
	"DATABASE_URL":       {"postgres://app:s3cr3t-pw@db:5432/app", false},
	"SESSIONLESS_JWT":    {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", false},
	"UPSTREAM":           {"Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZg", false},
	"PATH":               {"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", true},
	"NGINX_VERSION":      {"1.25.3", true},
	"JAVA_HOME":          {"/usr/lib/jvm/java-17-openjdk-amd64", true},
	"LANG":               {"C.UTF-8", true},
}

func secretRecording(t *testing.T) *Recording {
	t.Helper()
	r, err := LoadRecording(filepath.Join("..", "testdata", "recordings", "webserver.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env []any
	for name, v := range secretEnv {
		env = append(env, name+"="+v.value)
	}
	// As Docker's inspect decodes into generic JSON.
	r.Target.Container.Config = map[string]any{"Config": map[string]any{"Env": env, "Image": "nginx:1.22"}}
	return r
}

// TestRecordingRedactsSecrets: a container's secret-looking environment values never
// reach the recording file, their names do (NAME=<redacted>), harmless values are
// kept, and the file is 0600 even with a umask of 0.
func TestRecordingRedactsSecrets(t *testing.T) {
	r := secretRecording(t)
	path := filepath.Join(t.TempDir(), "rec.json")
	defer syscall.Umask(syscall.Umask(0))
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// JSON escapes the PEM's newlines: compare with the encoded form too.
	for name, v := range secretEnv {
		enc, _ := json.Marshal(name + "=" + v.value)
		present := strings.Contains(string(data), strings.Trim(string(enc), `"`))
		switch {
		case v.kept && !present:
			t.Errorf("%s=%s was redacted, want it kept", name, v.value)
		case !v.kept && present:
			t.Errorf("secret %s=%s is in the recording", name, v.value)
		case !v.kept && !strings.Contains(string(data), name+"="+Redacted):
			t.Errorf("%s=%s missing from the recording", name, Redacted)
		}
	}
	for _, s := range []string{"hunter2", "s3cr3t-pw", "MIIEvQ", "dozjgNry"} {
		if strings.Contains(string(data), s) {
			t.Errorf("secret fragment %q is in the recording", s)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("recording mode %v (%v), want 0600 whatever the umask", st.Mode().Perm(), err)
	}
	// A recording read back (say one written by an older tailor) is redacted again.
	back, err := LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Target.Container.Config["Config"].(map[string]any)["Image"] != "nginx:1.22" {
		t.Errorf("the rest of the configuration was not kept: %v", back.Target.Container.Config)
	}
}

func TestSecretValueShapes(t *testing.T) {
	for _, c := range []struct {
		name, value string
		secret      bool
	}{
		{"X", "https://user:pw@example.com/", true},
		{"X", "https://example.com/path", false},
		{"X", "7e6a1e0e2f44c3b5a0d3bb3a5ac5b83b1ad2c5f1e4d8a5d0f8d7c6b5a4f3e2d1", true},
		{"X", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", true},
		{"X", "linux-x86_64-gnu-2024-01-01", false},
		{"X", "-Xmx512m -XX:+UseG1GC -Djava.security.egd=file:/dev/./urandom", false},
		{"DB_PASSWORD", "", false},
	} {
		if got := SecretValue(c.name, c.value); got != c.secret {
			t.Errorf("SecretValue(%q, %q) = %v, want %v", c.name, c.value, got, c.secret)
		}
	}
}

// TestCommandLineSecretsRedacted: secrets passed as options or shaped like secrets are
// redacted in the target's command and in a container's entrypoint and command; the
// rest of the command line is kept.
func TestCommandLineSecretsRedacted(t *testing.T) {
	r := secretRecording(t)
	r.Target.Command = []string{"redis-server", "--requirepass", "hunter2-cmd", "--port", "6379", "--api-token=tok-in-arg", "postgres://u:pw-in-arg@db/x"}
	cfg := r.Target.Container.Config["Config"].(map[string]any)
	cfg["Entrypoint"] = []any{"/app", "-password", "pw-in-entrypoint"}
	cfg["Cmd"] = []any{"--db-secret=pw-in-cmd", "serve"}
	path := filepath.Join(t.TempDir(), "rec.json")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, s := range []string{"hunter2-cmd", "tok-in-arg", "pw-in-arg", "pw-in-entrypoint", "pw-in-cmd"} {
		if strings.Contains(string(data), s) {
			t.Errorf("secret %q is in the recording", s)
		}
	}
	back, err := LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"redis-server", "--requirepass", Redacted, "--port", "6379", "--api-token=" + Redacted, Redacted}
	if strings.Join(back.Target.Command, " ") != strings.Join(want, " ") {
		t.Errorf("command %q, want %q", back.Target.Command, want)
	}
}
