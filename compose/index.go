package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
)

// IndexFile is the index of a recording directory (learn --compose) and of a bundle
// directory (generate --compose).
const IndexFile = "index.json"

// OverrideFile is the Compose override generate --compose writes beside the bundles.
const OverrideFile = "compose.tailor.yml"

// Kinds of Index.Kind.
const (
	KindRecordings = "tailor.compose.recordings"
	KindBundles    = "tailor.compose.bundles"
)

// IndexSchemaVersion is the version of index.json this build writes and reads.
const IndexSchemaVersion = 1

// Index lists the services of a recording or bundle directory.
type Index struct {
	Kind          string `json:"kind"`
	SchemaVersion int    `json:"schemaVersion"`
	// Project is the Compose project name the recordings were made for.
	Project string `json:"project"`
	// ComposeFiles are the Compose files learned, as given.
	ComposeFiles []string `json:"composeFiles,omitempty"`
	// Services are in start order.
	Services []IndexService `json:"services"`
}

// IndexService is one service of an index.
type IndexService struct {
	Name string `json:"name"`
	// Path is the service's recording file or bundle directory, relative to the
	// index's directory.
	Path      string   `json:"path"`
	DependsOn []string `json:"dependsOn,omitempty"`
	// Containers are the names of the containers recorded (replicas are merged into
	// one recording).
	Containers []string `json:"containers,omitempty"`
	// Profile is the bundle's profile name (bundle directories only).
	Profile string `json:"profile,omitempty"`
}

// LoadIndex reads dir/index.json and checks its kind.
func LoadIndex(dir, kind string) (*Index, error) {
	path := filepath.Join(dir, IndexFile)
	data, err := safeio.ReadFile(path, safeio.MaxBundleFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not a tailor Compose directory: %v", dir, fail.ErrBadInput, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ix Index
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("%s: %w: malformed index: %v", path, fail.ErrBadInput, err)
	}
	if ix.Kind != kind {
		return nil, fmt.Errorf("%s: %w: index of kind %q, want %q", path, fail.ErrBadInput, ix.Kind, kind)
	}
	if ix.SchemaVersion != IndexSchemaVersion {
		return nil, fmt.Errorf("%s: %w: index schema version %d, this tailor reads %d", path, fail.ErrBadInput, ix.SchemaVersion, IndexSchemaVersion)
	}
	for _, s := range ix.Services {
		if !serviceName.MatchString(s.Name) || filepath.Base(s.Path) != s.Path || s.Path == ".." {
			return nil, fmt.Errorf("%s: %w: service %q with path %q: a service must name a file in the directory", path, fail.ErrBadInput, s.Name, s.Path)
		}
	}
	return &ix, nil
}

// save writes the index into dir.
func (ix *Index) save(dir string) error {
	data, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	return safeio.WriteFileAtomic(filepath.Join(dir, IndexFile), append(data, '\n'), safeio.FileMode)
}
