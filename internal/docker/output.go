package docker

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Output is a copy's stdout and stderr being copied to the user's.
type Output struct {
	conn  types.HijackedResponse
	ended chan struct{}
	err   error
	once  sync.Once
}

// Attach connects to the copy's stdout and stderr and copies them to stdout and
// stderr until the copy's streams end, which they do when it stops. Call it before
// Start: attaching first is what `docker start -a` does, and no output is missed.
// Without a TTY the daemon multiplexes both streams on one connection (split here
// with stdcopy); with one, everything is the terminal's output and goes to stdout.
// Close the Output on every path.
func (cp *Copy) Attach(ctx context.Context, stdout, stderr io.Writer) (*Output, error) {
	resp, err := cp.c.api.ContainerAttach(ctx, cp.id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, cp.c.apiError(fmt.Sprintf("attaching to copy %s", cp.name), err)
	}
	multiplexed := !cp.tty
	// Daemons since API 1.42 say which framing they chose; older ones follow the TTY.
	if mt, ok := resp.MediaType(); ok {
		multiplexed = mt == types.MediaTypeMultiplexedStream
	}
	o := &Output{conn: resp, ended: make(chan struct{})}
	go func() {
		defer close(o.ended)
		if multiplexed {
			_, o.err = stdcopy.StdCopy(stdout, stderr, resp.Reader)
		} else {
			_, o.err = io.Copy(stdout, resp.Reader)
		}
	}()
	return o, nil
}

// Wait returns once the stopped copy's output ended and was all written. A process
// that outlives the copy's init (one in the host's pid namespace) can hold the
// streams open: after grace, Wait stops reading and says so.
func (o *Output) Wait(grace time.Duration) error {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-o.ended:
	case <-t.C:
		o.Close()
		return fmt.Errorf("the copy's output did not end within %v of its stop; stopped reading it", grace)
	}
	o.Close()
	if o.err != nil {
		return fmt.Errorf("reading the copy's output: %w", o.err)
	}
	return nil
}

// Close stops reading the output and returns once nothing more is written to the
// writers given to Attach. It may be called more than once.
func (o *Output) Close() {
	o.once.Do(func() { o.conn.Close() })
	<-o.ended
}
