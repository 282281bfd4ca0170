// Package oci moves profile bundles through OCI registries: tailor push stores a
// bundle as an OCI artifact (one layer per bundle file) and its seccomp profile a
// second time in the layout container runtimes pull (KEP-6061, CRI-O, the Security
// Profiles Operator's spoc push); tailor pull fetches a bundle, verifies every blob
// against its descriptor's digest and every file against the digests bundle.json
// records, and writes it only when all of it checks out.
package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

// Media types. The bundle's are tailor's own; the seccomp profile's are those
// container runtimes recognise (KEP-6061: an OCI image manifest whose config media
// type, and artifact type, is MediaTypeSeccompProfile, with exactly one layer, the
// runtime-spec profile as raw JSON).
const (
	// ArtifactTypeBundle is the artifact type of a bundle's manifest.
	ArtifactTypeBundle = "application/vnd.tailor.bundle.v1"
	// MediaTypeBundleFile is the media type of each bundle file's layer; its name
	// is the layer's org.opencontainers.image.title annotation.
	MediaTypeBundleFile = "application/vnd.tailor.bundle.file.v1"
	// MediaTypeSeccompProfile identifies a seccomp profile artifact for runtimes.
	MediaTypeSeccompProfile = "application/vnd.cncf.seccomp-profile.config.v1+json"
	// mediaTypeSeccompLayer is the runtime format's layer: the profile as JSON.
	mediaTypeSeccompLayer = "application/json"
	// seccompLayerTitle is the layer name spoc gives a runtime-format profile.
	seccompLayerTitle = "profile.json"
	// SeccompTagSuffix names the seccomp artifact's default tag: TAG-seccomp.
	SeccompTagSuffix = "-seccomp"
	// maxManifest bounds a manifest read from a registry.
	maxManifest = 4 << 20
)

// seccompConfig is the config blob of the runtime format: only its media type
// matters.
var seccompConfig = []byte("{}")

// Options say how to reach a registry.
type Options struct {
	// PlainHTTP talks HTTP instead of HTTPS: only for a registry on a loopback
	// address (tests, a local mirror); refused for any other host.
	PlainHTTP bool
}

// Pushed describes what Push stored.
type Pushed struct {
	// Bundle is the bundle artifact's reference and manifest digest.
	Bundle, BundleDigest string
	// Seccomp is the runtime-format seccomp artifact's reference and digest.
	Seccomp, SeccompDigest string
	// Files are the bundle's files with their digests, sorted.
	Files []File
}

// File is one bundle file in an artifact.
type File struct {
	Name   string
	Digest string
}

// repository opens ref (REGISTRY/REPO:TAG or @DIGEST), with the credentials of
// Docker's config (docker login) when there are any.
func repository(ref string, o Options) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: reference %q: %v", fail.ErrBadInput, ref, err)
	}
	if o.PlainHTTP {
		host, _, err := net.SplitHostPort(repo.Reference.Registry)
		if err != nil {
			host = repo.Reference.Registry
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("%w: --plain-http is only for a registry on a loopback address, not %s: a bundle fetched in plain HTTP can be replaced on the way", fail.ErrBadInput, repo.Reference.Registry)
		}
		repo.PlainHTTP = true
	}
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials: %w", err)
	}
	repo.Client = &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache(), Credential: credentials.Credential(store)}
	return repo, nil
}

// readBundle reads the bundle in dir and refuses it unless every file matches
// bundle.json's digests (profiles.BundleProblems): a registry must never get a
// bundle enforce would refuse.
func readBundle(dir string) (map[string][]byte, error) {
	b, err := profiles.LoadBundle(dir)
	if err != nil {
		return nil, err
	}
	if problems := profiles.BundleProblems(dir, b); len(problems) > 0 {
		return nil, fmt.Errorf("%w: bundle %s: %s", fail.ErrRefused, dir, strings.Join(problems, "; "))
	}
	files := map[string][]byte{}
	for _, name := range append(slices.Sorted(maps.Keys(b.Digests)), profiles.BundleManifestFile) {
		data, err := safeio.ReadFile(filepath.Join(dir, name), safeio.MaxBundleFile)
		if err != nil {
			return nil, err
		}
		files[name] = data
	}
	return files, nil
}

// Push stores the bundle in dir at ref (which must name a tag), and its seccomp
// profile in the runtime format at seccompRef ("" means the same repository with
// the tag TAG-seccomp).
func Push(ctx context.Context, dir, ref, seccompRef string, o Options) (*Pushed, error) {
	files, err := readBundle(dir)
	if err != nil {
		return nil, err
	}
	repo, err := repository(ref, o)
	if err != nil {
		return nil, err
	}
	if repo.Reference.ValidateReferenceAsDigest() == nil || repo.Reference.Reference == "" {
		return nil, fmt.Errorf("%w: push needs a tag (REGISTRY/REPOSITORY:TAG), not %q", fail.ErrBadInput, ref)
	}
	if seccompRef == "" {
		r := repo.Reference
		r.Reference += SeccompTagSuffix
		seccompRef = r.String()
	}
	sRepo, err := repository(seccompRef, o)
	if err != nil {
		return nil, err
	}
	if sRepo.Reference.ValidateReferenceAsDigest() == nil || sRepo.Reference.Reference == "" {
		return nil, fmt.Errorf("%w: --seccomp-ref needs a tag, not %q", fail.ErrBadInput, seccompRef)
	}
	out := &Pushed{}
	desc, err := pushFiles(ctx, repo, repo.Reference.Reference, files)
	if err != nil {
		return nil, err
	}
	out.Bundle, out.BundleDigest = ref, desc.Digest.String()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		out.Files = append(out.Files, File{Name: name, Digest: profiles.FileDigest(files[name])})
	}
	sdesc, err := pushSeccomp(ctx, sRepo, sRepo.Reference.Reference, files[profiles.BundleSeccompFile])
	if err != nil {
		return nil, err
	}
	out.Seccomp, out.SeccompDigest = seccompRef, sdesc.Digest.String()
	return out, nil
}

// pushBlob pushes data unless the registry has it already.
func pushBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, data []byte) error {
	ok, err := repo.Exists(ctx, desc)
	if err != nil {
		return fmt.Errorf("registry %s: %w", repo.Reference.Registry, err)
	}
	if ok {
		return nil
	}
	if err := repo.Push(ctx, desc, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("pushing to %s: %w", repo.Reference, err)
	}
	return nil
}

// pushFiles stores files as a bundle artifact tagged tag, bundle.json first, the
// others sorted by name. It checks nothing: Push verified the bundle.
func pushFiles(ctx context.Context, repo *remote.Repository, tag string, files map[string][]byte) (ocispec.Descriptor, error) {
	names := slices.Sorted(maps.Keys(files))
	names = slices.DeleteFunc(names, func(n string) bool { return n == profiles.BundleManifestFile })
	names = append([]string{profiles.BundleManifestFile}, names...)
	var layers []ocispec.Descriptor
	for _, name := range names {
		desc := content.NewDescriptorFromBytes(MediaTypeBundleFile, files[name])
		if err := pushBlob(ctx, repo, desc, files[name]); err != nil {
			return ocispec.Descriptor{}, err
		}
		desc.Annotations = map[string]string{ocispec.AnnotationTitle: name}
		layers = append(layers, desc)
	}
	return packAndTag(ctx, repo, tag, ArtifactTypeBundle, oras.PackManifestOptions{Layers: layers})
}

// pushSeccomp stores profile in the runtime format tagged tag.
func pushSeccomp(ctx context.Context, repo *remote.Repository, tag string, profile []byte) (ocispec.Descriptor, error) {
	cfg := content.NewDescriptorFromBytes(MediaTypeSeccompProfile, seccompConfig)
	if err := pushBlob(ctx, repo, cfg, seccompConfig); err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := content.NewDescriptorFromBytes(mediaTypeSeccompLayer, profile)
	if err := pushBlob(ctx, repo, layer, profile); err != nil {
		return ocispec.Descriptor{}, err
	}
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: seccompLayerTitle}
	return packAndTag(ctx, repo, tag, MediaTypeSeccompProfile, oras.PackManifestOptions{ConfigDescriptor: &cfg, Layers: []ocispec.Descriptor{layer}})
}

func packAndTag(ctx context.Context, repo *remote.Repository, tag, artifactType string, opts oras.PackManifestOptions) (ocispec.Descriptor, error) {
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, artifactType, opts)
	if err != nil {
		return desc, fmt.Errorf("pushing the manifest to %s: %w", repo.Reference, err)
	}
	if err := repo.Tag(ctx, desc, tag); err != nil {
		return desc, fmt.Errorf("tagging %s: %w", repo.Reference, err)
	}
	return desc, nil
}

// Pulled describes what Pull fetched and verified.
type Pulled struct {
	// Digest is the bundle artifact's manifest digest.
	Digest string
	// Name is the bundle's profile name.
	Name  string
	Files []File
}

// Fetch fetches the bundle at ref and verifies it, writing it nowhere but a private
// temporary directory for the check: every
// blob against its descriptor (size and digest), the manifest against the digest
// the reference pins or the registry reports, and the files against bundle.json
// (the same checks enforce makes when it loads a bundle).
func Fetch(ctx context.Context, ref string, o Options) (map[string][]byte, *Pulled, error) {
	repo, err := repository(ref, o)
	if err != nil {
		return nil, nil, err
	}
	desc, rc, err := repo.FetchReference(ctx, repo.Reference.Reference)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	defer rc.Close()
	if desc.Size > maxManifest {
		return nil, nil, fmt.Errorf("%w: %s: manifest of %d bytes", fail.ErrRefused, ref, desc.Size)
	}
	raw, err := content.ReadAll(rc, desc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: manifest does not match its digest: %v", fail.ErrRefused, ref, err)
	}
	m, err := decodeManifest(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", fail.ErrRefused, ref, err)
	}
	if m.ArtifactType != ArtifactTypeBundle {
		return nil, nil, fmt.Errorf("%w: %s is not a tailor bundle (artifact type %q, want %q)", fail.ErrRefused, ref, m.ArtifactType, ArtifactTypeBundle)
	}
	files := map[string][]byte{}
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		switch {
		case l.MediaType != MediaTypeBundleFile:
			return nil, nil, fmt.Errorf("%w: %s: layer %s has media type %q", fail.ErrRefused, ref, l.Digest, l.MediaType)
		case name == "" || name != filepath.Base(name) || name == "." || name == "..":
			return nil, nil, fmt.Errorf("%w: %s: layer %s is named %q, not a bundle file name", fail.ErrRefused, ref, l.Digest, name)
		case files[name] != nil:
			return nil, nil, fmt.Errorf("%w: %s: two layers named %s", fail.ErrRefused, ref, name)
		case len(l.URLs) > 0:
			return nil, nil, fmt.Errorf("%w: %s: layer %s points elsewhere (urls)", fail.ErrRefused, ref, name)
		case l.Size < 0 || l.Size > safeio.MaxBundleFile:
			return nil, nil, fmt.Errorf("%w: %s: %s is %d bytes", fail.ErrRefused, ref, name, l.Size)
		}
		data, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %s does not match its digest %s: %v", fail.ErrRefused, ref, name, l.Digest, err)
		}
		files[name] = data
	}
	b, err := verifyFiles(files)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", fail.ErrRefused, ref, err)
	}
	p := &Pulled{Digest: desc.Digest.String(), Name: b.Name}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p.Files = append(p.Files, File{Name: name, Digest: profiles.FileDigest(files[name])})
	}
	return files, p, nil
}

// verifyFiles checks the pulled files as enforce checks a bundle directory: they
// are written to a private temporary directory and checked there by the same
// functions (profiles.LoadBundle, BundleProblems), and the artifact must hold
// exactly bundle.json and the files it records.
func verifyFiles(files map[string][]byte) (*profiles.Bundle, error) {
	if files[profiles.BundleManifestFile] == nil {
		return nil, errors.New("no bundle.json layer")
	}
	tmp, err := os.MkdirTemp("", "tailor-pull-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, safeio.FileMode); err != nil {
			return nil, err
		}
	}
	b, err := profiles.LoadBundle(tmp)
	if err != nil {
		return nil, err
	}
	for name := range files {
		if _, ok := b.Digests[name]; !ok && name != profiles.BundleManifestFile {
			return nil, fmt.Errorf("layer %s is not a file bundle.json records", name)
		}
	}
	if problems := profiles.BundleProblems(tmp, b); len(problems) > 0 {
		return nil, fmt.Errorf("bundle does not match bundle.json: %s", strings.Join(problems, "; "))
	}
	return b, nil
}

// Pull fetches and verifies the bundle at ref (Fetch) and writes it as dir, whole
// (safeio.WriteDir: nothing is written unless everything verified).
func Pull(ctx context.Context, ref, dir string, o Options) (*Pulled, error) {
	if err := generate.CheckOutput(dir); err != nil {
		return nil, err
	}
	files, p, err := Fetch(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	if err := safeio.WriteDir(dir, files, generate.BundleFileNames(), safeio.FileMode, safeio.DirMode); err != nil {
		return nil, err
	}
	return p, nil
}

// Print writes what was pushed or pulled, one line each, digests included.
func (p *Pushed) Print(w io.Writer) {
	fmt.Fprintf(w, "pushed bundle %s@%s\n", p.Bundle, p.BundleDigest)
	for _, f := range p.Files {
		fmt.Fprintf(w, "  %s %s\n", f.Digest, f.Name)
	}
	fmt.Fprintf(w, "pushed seccomp profile %s@%s (%s, for runtimes that pull profiles)\n", p.Seccomp, p.SeccompDigest, MediaTypeSeccompProfile)
}

// Print writes what was pulled.
func (p *Pulled) Print(w io.Writer, ref, dir string) {
	fmt.Fprintf(w, "pulled bundle %s (%s) from %s@%s: %d files verified against their digests and bundle.json\n", p.Name, dir, ref, p.Digest, len(p.Files))
	for _, f := range p.Files {
		fmt.Fprintf(w, "  %s %s\n", f.Digest, f.Name)
	}
}

// decodeManifest decodes an OCI image manifest, refusing anything else (an index,
// a Docker schema 2 manifest) and unknown fields.
func decodeManifest(raw []byte) (*ocispec.Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m ocispec.Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("malformed manifest: %w", err)
	}
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("not an OCI image manifest (schema %d, media type %q)", m.SchemaVersion, m.MediaType)
	}
	return &m, nil
}
