package learn

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/profiles"
)

// A directory with more than CollapseAt files collapses into one entry that keeps
// every observation's count and the union of the access; its subdirectories, other
// directories' files and the directory itself stay entries of their own.
func TestFileStoreCollapsesHugeDirectories(t *testing.T) {
	fs := newFileStore()
	fs.get("/d", true).access |= bpf.AccList
	fs.get("/d/sub", true).access |= bpf.AccList
	fs.get("/e/x", false).access |= bpf.AccRead
	n := CollapseAt + 10
	for i := range n {
		p := fmt.Sprintf("/d/f%d", i)
		fs.get(p, false).access |= bpf.AccWrite | bpf.AccCreate
		fs.get(p, false).ops1 |= bpf.AccDelete // a second observation of the same file
	}
	fs.get("/d/f0", false).access |= bpf.AccRead // after the collapse: joins it

	if got := fs.len(); got != 4 {
		t.Fatalf("entries = %d, want 4 (/d, /d/sub, /e/x, collapsed /d)", got)
	}
	entries := fs.entries()
	r := &profiles.Recording{Files: entries}
	r.Normalize()
	want := []profiles.FileAccess{
		{Path: "/d", Access: []string{profiles.AccessList}, Dir: true},
		{Path: "/d", Access: []string{profiles.AccessCreate, profiles.AccessDelete, profiles.AccessRead, profiles.AccessWrite}, Collapsed: uint64(2*n + 1)},
		{Path: "/d/sub", Access: []string{profiles.AccessList}, Dir: true},
		{Path: "/e/x", Access: []string{profiles.AccessRead}},
	}
	if !slices.EqualFunc(r.Files, want, func(a, b profiles.FileAccess) bool {
		return a.Path == b.Path && a.Dir == b.Dir && a.Collapsed == b.Collapsed && slices.Equal(a.Access, b.Access)
	}) {
		t.Fatalf("files = %+v\nwant %+v", r.Files, want)
	}
}

// Below the threshold nothing collapses.
func TestFileStoreKeepsSmallDirectories(t *testing.T) {
	fs := newFileStore()
	for i := range CollapseAt {
		fs.get(fmt.Sprintf("/d/f%d", i), false).access |= bpf.AccRead
	}
	if got := fs.len(); got != CollapseAt {
		t.Fatalf("entries = %d, want %d", got, CollapseAt)
	}
	for _, e := range fs.entries() {
		if e.Collapsed != 0 {
			t.Fatalf("collapsed entry %+v below the threshold", e)
		}
	}
}

// Failed attempts collapse the same way, per directory and errno.
func TestFailStoreCollapsesHugeDirectories(t *testing.T) {
	fs := newFailStore()
	n := CollapseAt + 5
	for i := range n {
		fs.add(fmt.Sprintf("/d/f%d", i), "ENOENT", bpf.AccRead)
	}
	fs.add("/d/f1", "EACCES", bpf.AccWrite)
	fs.add("/e/x", "ENOENT", bpf.AccRead)
	r := &profiles.Recording{Failed: fs.entries()}
	r.Normalize()
	want := []profiles.FailedAccess{
		{Path: "/d", Errno: "ENOENT", Access: []string{profiles.AccessRead}, Collapsed: uint64(n)},
		{Path: "/d/f1", Errno: "EACCES", Access: []string{profiles.AccessWrite}},
		{Path: "/e/x", Errno: "ENOENT", Access: []string{profiles.AccessRead}},
	}
	if !slices.EqualFunc(r.Failed, want, func(a, b profiles.FailedAccess) bool {
		return a.Path == b.Path && a.Errno == b.Errno && a.Collapsed == b.Collapsed && slices.Equal(a.Access, b.Access)
	}) {
		t.Fatalf("failed = %+v\nwant %+v", r.Failed, want)
	}
}
