// Package docker is tailor's one Docker adapter, used by learn, enforce, watch and
// audit alike: it identifies a container, relaunches a copy of it (under a permissive
// "learning" seccomp profile for `tailor learn --container`, under the bundle's
// profiles for `tailor enforce --container`), drives the copy's lifecycle, cleans up
// copies left by killed tailor runs, and runs a workload inside a container's network
// namespace. It does no tracing and no enforcing itself.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// Client talks to one Docker daemon.
type Client struct {
	api  *client.Client
	host string
}

// Connect reaches the daemon named by the environment (DOCKER_HOST, DOCKER_API_VERSION,
// DOCKER_CERT_PATH, DOCKER_TLS_VERIFY; the default socket otherwise), negotiates the
// API version and pings it. Every failure wraps fail.ErrDocker in one line that says
// what to do.
func Connect(ctx context.Context) (*Client, error) {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("%w: bad docker client settings (DOCKER_HOST=%q): %v", fail.ErrDocker, os.Getenv("DOCKER_HOST"), err)
	}
	c := &Client{api: api, host: api.DaemonHost()}
	if _, err := api.Ping(ctx); err != nil {
		_ = api.Close()
		return nil, c.connError(err)
	}
	return c, nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// connError turns a failure to talk to the daemon into the line a user can act on.
func (c *Client) connError(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: permission denied on the docker socket %s: run tailor as root or as a member of the docker group", fail.ErrDocker, c.host)
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%w: cannot reach the docker daemon at %s: start it (systemctl start docker) or point DOCKER_HOST at a running one", fail.ErrDocker, c.host)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: talking to the docker daemon at %s", fail.ErrInterrupted, c.host)
	default:
		return fmt.Errorf("%w: docker daemon at %s: %s", fail.ErrDocker, c.host, oneLine(err))
	}
}

// apiError wraps an error from an API call about what (for example `container "web"`).
func (c *Client) apiError(what string, err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %s not found (check the name with 'docker ps -a' / 'docker images')", fail.ErrDocker, what)
	}
	if client.IsErrConnectionFailed(err) || errors.Is(err, os.ErrPermission) || errors.Is(err, context.Canceled) {
		return c.connError(err)
	}
	return fmt.Errorf("%w: %s: %s", fail.ErrDocker, what, oneLine(err))
}

// oneLine keeps the daemon's message to the single line the CLI prints.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func (c *Client) inspect(ctx context.Context, nameOrID string) (container.InspectResponse, error) {
	info, err := c.api.ContainerInspect(ctx, nameOrID)
	if err != nil {
		return info, c.apiError(fmt.Sprintf("container %q", nameOrID), err)
	}
	if info.Config == nil || info.HostConfig == nil || info.ContainerJSONBase == nil {
		return info, fmt.Errorf("%w: container %q: the daemon returned an incomplete description", fail.ErrDocker, nameOrID)
	}
	return info, nil
}

// Identity describes the container for a recording: names and IDs of the container
// and its image, the runtime that runs it and that runtime's version, and the
// container's original configuration as Docker reports it.
func (c *Client) Identity(ctx context.Context, nameOrID string) (*profiles.Container, error) {
	info, err := c.inspect(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	img, err := c.api.ImageInspect(ctx, info.Image)
	if err != nil {
		return nil, c.apiError(fmt.Sprintf("image %s of container %q", info.Image, nameOrID), err)
	}
	id := &profiles.Container{
		Name:         strings.TrimPrefix(info.Name, "/"),
		ID:           info.ID,
		Image:        info.Config.Image,
		ImageID:      info.Image,
		ImageDigests: append([]string(nil), img.RepoDigests...),
		Runtime:      info.HostConfig.Runtime,
	}
	if id.Runtime == "" {
		sys, err := c.api.Info(ctx)
		if err != nil {
			return nil, c.apiError("daemon info", err)
		}
		id.Runtime = sys.DefaultRuntime
	}
	if id.RuntimeVersion, err = c.runtimeVersion(ctx, id.Runtime); err != nil {
		return nil, err
	}
	if id.Config, err = configMap(info); err != nil {
		return nil, err
	}
	return id, nil
}

// runtimeVersion asks the daemon for the version of runtime. The daemon only reports
// runc's (as a "runc" component); any other runtime's version stays empty rather than
// guessed.
func (c *Client) runtimeVersion(ctx context.Context, runtime string) (string, error) {
	if runtime != "runc" && runtime != "io.containerd.runc.v2" {
		return "", nil
	}
	v, err := c.api.ServerVersion(ctx)
	if err != nil {
		return "", c.apiError("daemon version", err)
	}
	for _, comp := range v.Components {
		if comp.Name == "runc" {
			return comp.Version, nil
		}
	}
	return "", nil
}

// configMap is the container's Config and HostConfig as generic JSON, the way the
// recording keeps them.
func configMap(info container.InspectResponse) (map[string]any, error) {
	b, err := json.Marshal(struct {
		Config     *container.Config
		HostConfig *container.HostConfig
	}{info.Config, info.HostConfig})
	if err != nil {
		return nil, fmt.Errorf("encoding the container configuration: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding the container configuration: %w", err)
	}
	return m, nil
}

// Running returns the full ID and the init pid of a running container, for learning
// by attaching to it (and for watch).
func (c *Client) Running(ctx context.Context, nameOrID string) (id string, pid int, err error) {
	info, err := c.inspect(ctx, nameOrID)
	if err != nil {
		return "", 0, err
	}
	if info.State == nil || !info.State.Running || info.State.Pid <= 0 {
		status := "unknown"
		if info.State != nil {
			status = string(info.State.Status)
		}
		return "", 0, fmt.Errorf("%w: container %q is not running (state %s): start it, or learn it without attaching", fail.ErrDocker, nameOrID, status)
	}
	return info.ID, info.State.Pid, nil
}

// State is what Inspect tells of a container's state.
type State struct {
	// ID is the container's full ID.
	ID string
	// Running is true while its init runs; Pid is then that init's host pid.
	Running bool
	Pid     int
	// Status is Docker's word for the state (created, running, exited...).
	Status string
}

// State inspects the container nameOrID: unlike Running, a container that is not
// running is not an error, so each caller says what to do about it.
func (c *Client) State(ctx context.Context, nameOrID string) (State, error) {
	info, err := c.inspect(ctx, nameOrID)
	if err != nil {
		return State{}, err
	}
	s := State{ID: info.ID, Status: "unknown"}
	if info.State != nil {
		s.Running = info.State.Running && info.State.Pid > 0
		s.Pid = info.State.Pid
		s.Status = string(info.State.Status)
	}
	return s, nil
}
