// Package clitest runs tailor subcommands in-process for tests, the way cmd/tailor
// runs them: errors are returned, never printed by urfave/cli, and turned into the
// exit code main would use.
package clitest

import (
	"bytes"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
)

// Run runs `tailor ARGS...` with commands and returns stdout, stderr (the error's
// line appended, as main prints it) and the exit code.
func Run(t *testing.T, commands []*cli.Command, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name:           "tailor",
		Commands:       commands,
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"tailor"}, args...))
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), fail.Code(err)
}
