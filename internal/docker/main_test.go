package docker

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/tailor-sec/tailor/internal/dockertest"
)

// childEnv selects a role for the test binary when a test re-runs it as a child
// process: as another user, or as a tailor run that dies without cleaning up.
const childEnv = "TAILOR_DOCKER_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		dockertest.Main(m)
	case "connect":
		// Print the error Connect gives this (unprivileged) user.
		_, err := Connect(context.Background())
		fmt.Println(err)
		os.Exit(0)
	case "abandon-copy":
		// A tailor run killed after creating its copy: the copy stays behind.
		c, err := Connect(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cp, err := c.PrepareCopy(context.Background(), os.Getenv("TAILOR_TEST_ORIGINAL"), CopyOptions{Labels: dockertest.Labels()})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(cp.Name())
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown %s role %q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}
