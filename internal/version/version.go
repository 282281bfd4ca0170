// Package version holds tailor's version, set at build time with
// -ldflags "-X github.com/tailor-sec/tailor/internal/version.Version=...".
package version

// Version is tailor's version; "dev" for builds without a version stamp.
var Version = "dev"
