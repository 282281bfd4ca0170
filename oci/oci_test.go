package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/registrytest"
	"github.com/tailor-sec/tailor/profiles"
)

// testBundle writes the bundle of a test recording and returns its directory.
func testBundle(t *testing.T) string {
	t.Helper()
	r, err := profiles.LoadRecording("../testdata/recordings/webserver.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate.Generate([]*profiles.Recording{r}, generate.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := generate.Write(dir, b, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readDir returns every file of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

func sameFiles(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	if !slices.Equal(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))) {
		t.Fatalf("files %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for name, data := range want {
		if !bytes.Equal(data, got[name]) {
			t.Errorf("%s differs after the round trip", name)
		}
	}
}

// TestPushPullRoundTrip pushes a bundle to a real registry on 127.0.0.1 and pulls
// it back byte for byte, by tag and by digest; the seccomp profile is also there in
// the runtime format; a blob changed in the registry's storage, and an artifact whose
// files do not match its bundle.json, are refused and nothing is written.
func TestPushPullRoundTrip(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := context.Background()
	opt := Options{PlainHTTP: true}
	src := testBundle(t)
	orig := readDir(t, src)
	ref := reg.Host + "/tailor/web:v1"

	pushed, err := Push(ctx, src, ref, "", opt)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	pushed.Print(&out)
	t.Logf("%s", out.String())
	if len(pushed.Files) != len(orig) || !strings.HasPrefix(pushed.BundleDigest, "sha256:") || pushed.Seccomp != reg.Host+"/tailor/web:v1-seccomp" {
		t.Fatalf("pushed %+v", pushed)
	}

	for _, pullRef := range []string{ref, reg.Host + "/tailor/web@" + pushed.BundleDigest} {
		dst := filepath.Join(t.TempDir(), "pulled")
		p, err := Pull(ctx, pullRef, dst, opt)
		if err != nil {
			t.Fatalf("pull %s: %v", pullRef, err)
		}
		if p.Digest != pushed.BundleDigest {
			t.Errorf("pulled digest %s, pushed %s", p.Digest, pushed.BundleDigest)
		}
		sameFiles(t, orig, readDir(t, dst))
	}

	// The runtime format: an OCI image manifest whose config media type and artifact
	// type are the seccomp profile's, with one raw JSON layer, seccomp.json itself.
	repo, err := repository(pushed.Seccomp, opt)
	if err != nil {
		t.Fatal(err)
	}
	desc, rc, err := repo.FetchReference(ctx, repo.Reference.Reference)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := content.ReadAll(rc, desc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != pushed.SeccompDigest || m.Config.MediaType != MediaTypeSeccompProfile || m.ArtifactType != MediaTypeSeccompProfile || len(m.Layers) != 1 || m.Layers[0].MediaType != "application/json" {
		t.Fatalf("seccomp artifact manifest: %s", raw)
	}
	layer, err := content.FetchAll(ctx, repo, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(layer, orig[profiles.BundleSeccompFile]) {
		t.Errorf("seccomp artifact layer differs from seccomp.json")
	}
	cfg, err := content.FetchAll(ctx, repo, m.Config)
	if err != nil || string(cfg) != "{}" {
		t.Errorf("seccomp artifact config %q, %v", cfg, err)
	}

	refused := func(what, pullRef, want string) {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "refused")
		_, err := Pull(ctx, pullRef, dst, opt)
		if err == nil || !errors.Is(err, fail.ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: pull gave %v, want a refusal saying %q", what, err, want)
		}
		if _, serr := os.Stat(dst); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s: %s written though refused", what, dst)
		}
	}

	// An artifact whose seccomp.json is not the one its bundle.json records: every
	// blob matches its descriptor, the bundle does not match itself.
	forged := readDir(t, src)
	forged[profiles.BundleSeccompFile] = append(bytes.TrimSpace(forged[profiles.BundleSeccompFile]), ' ', '\n')
	brepo, err := repository(ref, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pushFiles(ctx, brepo, "forged", forged); err != nil {
		t.Fatal(err)
	}
	refused("forged seccomp.json", reg.Host+"/tailor/web:forged", "changed or truncated")

	// A layer bundle.json does not record.
	extra := readDir(t, src)
	extra["run.sh"] = []byte("#!/bin/sh\n")
	if _, err := pushFiles(ctx, brepo, "extra", extra); err != nil {
		t.Fatal(err)
	}
	refused("extra layer", reg.Host+"/tailor/web:extra", "not a file bundle.json records")

	// A blob changed in the registry's storage: same size, other bytes.
	var seccompDigest string
	for _, f := range pushed.Files {
		if f.Name == profiles.BundleSeccompFile {
			seccompDigest = f.Digest
		}
	}
	blob := reg.BlobPath(seccompDigest)
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, orig[profiles.BundleSeccompFile]) {
		t.Fatalf("%s is not seccomp.json's blob", blob)
	}
	tampered := bytes.Replace(data, []byte("SCMP_ACT_ERRNO"), []byte("SCMP_ACT_ALLOW"), 1)
	if bytes.Equal(tampered, data) {
		t.Fatal("nothing to tamper with")
	}
	if err := os.WriteFile(blob, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	refused("blob changed in storage", ref, "does not match its digest")
}

// TestPushRefusesBrokenBundle: a bundle enforce would refuse is not pushed.
func TestPushRefusesBrokenBundle(t *testing.T) {
	src := testBundle(t)
	f := filepath.Join(src, profiles.BundleSeccompFile)
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, append(data, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	// No registry runs at this address: the refusal comes before any connection.
	_, err = Push(context.Background(), src, "127.0.0.1:1/x:y", "", Options{PlainHTTP: true})
	if !errors.Is(err, fail.ErrRefused) {
		t.Fatalf("push of a changed bundle: %v", err)
	}
}

// TestPlainHTTPOnlyOnLoopback: plain HTTP to any other host is refused before any
// connection.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	for _, ref := range []string{"registry.example/x:y", "10.0.0.1:5000/x:y"} {
		if _, err := repository(ref, Options{PlainHTTP: true}); !errors.Is(err, fail.ErrBadInput) {
			t.Errorf("%s: %v", ref, err)
		}
	}
	for _, ref := range []string{"127.0.0.1:5000/x:y", "localhost:5000/x:y", "[::1]:5000/x:y"} {
		if _, err := repository(ref, Options{PlainHTTP: true}); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
}

// TestDecodeManifestRefusesOthers: an index or unknown fields are refused.
func TestDecodeManifestRefusesOthers(t *testing.T) {
	idx, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex})
	if _, err := decodeManifest(idx); err == nil {
		t.Error("an index accepted as a manifest")
	}
	if _, err := decodeManifest([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","bogus":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
}
