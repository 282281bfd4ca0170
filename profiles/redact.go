package profiles

import (
	"math"
	"regexp"
	"strings"
)

// Redacted replaces the value of a secret-looking environment variable in recordings
// and bundles; the name is kept, so a reader still sees that the variable was set.
const Redacted = "<redacted>"

// secretName matches environment variable names that usually hold a secret.
var secretName = regexp.MustCompile(`(?i)PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|SIGNATURE|SALT|COOKIE|SESSION|DSN`)

// Value shapes that are secrets whatever the variable is called.
var (
	// A URL with a password in its user information: scheme://user:password@host.
	urlPassword = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@`)
	// A JSON Web Token: three base64url parts, the first a JSON object ("eyJ").
	jwt = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
	// Runs of base64 or hex characters long enough to be a key or a token. Separators
	// (- _ . /) end a run: words joined by them (java-17-openjdk-amd64, paths) are
	// not keys, and a base64 key rarely holds a '/' often enough to be cut short.
	tokenRun = regexp.MustCompile(`[A-Za-z0-9+=]{20,}`)
	hexRun   = regexp.MustCompile(`^[0-9a-fA-F]+$`)
)

// SecretValue reports whether an environment variable looks like it holds a secret,
// by its name (DB_PASSWORD, API_TOKEN...) or by its value's shape (a PEM block, a
// JWT, a URL with a password, a long random-looking string).
func SecretValue(name, value string) bool {
	if value == "" {
		return false
	}
	if secretName.MatchString(name) {
		return true
	}
	if strings.Contains(value, "-----BEGIN") || urlPassword.MatchString(value) || jwt.MatchString(value) {
		return true
	}
	for _, run := range tokenRun.FindAllString(value, -1) {
		if randomLooking(run) {
			return true
		}
	}
	return false
}

// randomLooking tells a key or token from a long word: 32 hex digits or more, or
// letters and digits mixed with high entropy per character (base64, base62).
func randomLooking(s string) bool {
	if len(s) >= 32 && hexRun.MatchString(s) {
		return true
	}
	upper, lower, digits := 0, 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z':
			lower++
		case c >= 'A' && c <= 'Z':
			upper++
		}
	}
	switch {
	case digits == 0 || upper+lower == 0:
		return false
	case upper > 0 && lower > 0:
		return entropy(s) >= 3.5
	default:
		return len(s) >= 32 && entropy(s) >= 4
	}
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

// RedactEnv returns env ("NAME=value" entries) with every secret-looking value
// replaced by Redacted.
func RedactEnv(env []string) []string {
	out := make([]string, len(env))
	for i, e := range env {
		name, value, ok := strings.Cut(e, "=")
		if ok && value != Redacted && SecretValue(name, value) {
			e = name + "=" + Redacted
		}
		out[i] = e
	}
	return out
}

// RedactArgs returns argv with secrets replaced by Redacted: the value of an option
// whose name looks secret (--requirepass X, --db-password=X, -token X) and any
// argument shaped like a secret (a URL with a password, a JWT, a PEM block, a long
// random-looking string). Option names are kept.
func RedactArgs(argv []string) []string {
	out := make([]string, len(argv))
	copy(out, argv)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if name, ok := strings.CutPrefix(a, "-"); ok && len(name) > 0 {
			name, value, eq := strings.Cut(strings.TrimPrefix(name, "-"), "=")
			switch {
			case !secretName.MatchString(name):
			case eq && value != "" && value != Redacted:
				out[i] = a[:len(a)-len(value)] + Redacted
			case !eq && i+1 < len(out) && !strings.HasPrefix(out[i+1], "-"):
				out[i+1] = Redacted
				i++
			}
			continue
		}
		if a != Redacted && SecretValue("", a) {
			out[i] = Redacted
		}
	}
	return out
}

// Redact removes secrets from what a recording keeps of its target: the command line
// and, in a container's configuration as Docker reports it, the environment
// (Config.Env) and the entrypoint and command (Config.Entrypoint, Config.Cmd).
// Everything a recording or a bundle source holds passes through here before it is
// written.
func (t *Target) Redact() {
	t.Command = nilIfEmpty(RedactArgs(t.Command))
	if t.Container == nil || t.Container.Config == nil {
		return
	}
	cfg, ok := t.Container.Config["Config"].(map[string]any)
	if !ok {
		return
	}
	redactList(cfg, "Env", RedactEnv)
	redactList(cfg, "Entrypoint", RedactArgs)
	redactList(cfg, "Cmd", RedactArgs)
}

// redactList applies redact to the string list cfg[key], which generic JSON decoding
// makes a []any.
func redactList(cfg map[string]any, key string, redact func([]string) []string) {
	switch list := cfg[key].(type) {
	case []any:
		var strs []string
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return
			}
			strs = append(strs, s)
		}
		for i, s := range redact(strs) {
			list[i] = s
		}
	case []string:
		cfg[key] = redact(list)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
