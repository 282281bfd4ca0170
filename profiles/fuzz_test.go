package profiles

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeRecording mutates the real recordings under testdata/recordings: decoding
// never panics, and what decodes encodes to a recording that decodes to the same bytes
// (normalising, redaction included, is idempotent). `make fuzz` runs it for a bounded
// time; `go test` runs the seeds.
func FuzzDecodeRecording(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "recordings", "*.json"))
	if len(seeds) == 0 {
		f.Fatal("no seed recordings under testdata/recordings")
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecording(data)
		if err != nil {
			return
		}
		if err := r.ValidateNames(); err != nil {
			return
		}
		once, err := r.Encode()
		if err != nil {
			t.Fatalf("a decoded recording does not encode: %v", err)
		}
		again, err := DecodeRecording(once)
		if err != nil {
			t.Fatalf("an encoded recording does not decode: %v\n%s", err, once)
		}
		twice, err := again.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not stable:\n%s\n---\n%s", once, twice)
		}
	})
}

// FuzzLoadBundle mutates the bundle.json and seccomp.json of the golden bundles:
// loading, checking the files (BundleProblems) and building the policy never panic.
func FuzzLoadBundle(f *testing.F) {
	golden, _ := filepath.Glob(filepath.Join("..", "testdata", "golden", "*", BundleManifestFile))
	if len(golden) == 0 {
		f.Fatal("no golden bundles under testdata/golden")
	}
	src := filepath.Dir(golden[0])
	for _, g := range golden {
		manifest, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		sc, err := os.ReadFile(filepath.Join(filepath.Dir(g), BundleSeccompFile))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(manifest, sc)
	}
	f.Fuzz(func(t *testing.T, manifest, sc []byte) {
		dir := t.TempDir()
		entries, _ := os.ReadDir(src)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(src, e.Name()))
			switch e.Name() {
			case BundleManifestFile:
				data = manifest
			case BundleSeccompFile:
				data = sc
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if b, err := LoadBundle(dir); err == nil {
			_ = BundleProblems(dir, b)
		}
		if p, err := LoadPolicy(dir); err == nil {
			_ = Diff(p, p)
		}
		if s, err := DecodeSeccomp(sc); err == nil {
			_ = SeccompProblems(&Bundle{}, s)
		}
	})
}
