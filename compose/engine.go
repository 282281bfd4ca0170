package compose

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/tailor-sec/tailor/internal/fail"
)

// ComposeBinary is the Compose client tailor runs: Debian's docker-compose (Compose
// v1, 1.29). It reaches the daemon through DOCKER_HOST like the docker CLI.
const ComposeBinary = "docker-compose"

// composeCLI runs docker-compose on one project with a fixed list of files.
type composeCLI struct {
	project string
	files   []string
	// dir is the working directory. Compose v1 reads a seccomp=PATH security option
	// relative to it (every other relative path of a Compose file is relative to the
	// project directory, the first file's).
	dir            string
	stdout, stderr io.Writer
}

// run runs docker-compose -p project -f file... args. Its output goes to the
// configured writers; the error carries the last line it printed.
func (c composeCLI) run(ctx context.Context, args ...string) error {
	bin, err := exec.LookPath(ComposeBinary)
	if err != nil {
		return fmt.Errorf("%w: %s not found on PATH: install it (Debian: apt-get install docker-compose)", fail.ErrDocker, ComposeBinary)
	}
	argv := []string{"-p", c.project}
	for _, f := range c.files {
		argv = append(argv, "-f", f)
	}
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Dir = c.dir
	var tail bytes.Buffer
	cmd.Stdout = writerOr(c.stdout)
	cmd.Stderr = io.MultiWriter(writerOr(c.stderr), &tail)
	if err := cmd.Run(); err != nil {
		last := strings.TrimSpace(tail.String())
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		return fmt.Errorf("%w: docker-compose %s: %v: %s", fail.ErrDocker, args[0], err, last)
	}
	return nil
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// engine is the Docker API, for what Compose's CLI does not tell: the project's
// containers and their state.
type engine struct{ api *client.Client }

func connect(ctx context.Context) (*engine, error) {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", fail.ErrDocker, err)
	}
	if _, err := api.Ping(ctx); err != nil {
		api.Close()
		return nil, fmt.Errorf("%w: cannot reach the docker daemon at %s: %v", fail.ErrDocker, api.DaemonHost(), err)
	}
	return &engine{api: api}, nil
}

func (e *engine) close() { e.api.Close() }

// projectContainer is one container of a Compose project.
type projectContainer struct {
	ID, Name, Service string
	Number            int
	Running           bool
	// Created is the creation time (Unix seconds).
	Created int64
}

// containers lists the project's containers (running or not), by service, each
// service's in container-number order.
func (e *engine) containers(ctx context.Context, project string) (map[string][]projectContainer, error) {
	list, err := e.api.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", LabelProject+"="+project))})
	if err != nil {
		return nil, fmt.Errorf("%w: listing the containers of project %s: %v", fail.ErrDocker, project, err)
	}
	out := map[string][]projectContainer{}
	for _, c := range list {
		svc := c.Labels[LabelService]
		if svc == "" {
			continue
		}
		n, _ := strconv.Atoi(c.Labels["com.docker.compose.container-number"])
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out[svc] = append(out[svc], projectContainer{ID: c.ID, Name: name, Service: svc, Number: n, Running: c.State == "running", Created: c.Created})
	}
	for _, cs := range out {
		slices.SortFunc(cs, func(a, b projectContainer) int { return a.Number - b.Number })
	}
	return out, nil
}

// pid is the init pid of a running container.
func (e *engine) pid(ctx context.Context, id string) (int, error) {
	info, err := e.api.ContainerInspect(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("%w: inspecting %s: %v", fail.ErrDocker, id[:12], err)
	}
	if info.State == nil || !info.State.Running || info.State.Pid == 0 {
		return 0, fmt.Errorf("%w: container %s is not running", fail.ErrWorkload, strings.TrimPrefix(info.Name, "/"))
	}
	return info.State.Pid, nil
}

// allExited closes the returned channel once every container in ids stopped running.
func (e *engine) allExited(ctx context.Context, ids []string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for _, id := range ids {
			// A wait that fails (the container was removed) counts as exited.
			ch, errc := e.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
			select {
			case <-ch:
			case <-errc:
			}
		}
		if ctx.Err() == nil {
			close(done)
		}
	}()
	return done
}

// startInOrder creates and starts the project's services one by one in start order,
// calling created with each service's containers between their creation and their
// start, so a tracer knows a container's cgroup before its first syscall. Creating
// all services first (up --no-start) would not do: Compose v1 cannot create a
// service with network_mode service:X while X is not running, and silently gives
// it a network of its own. Each `up -d S` keeps Compose's depends_on conditions
// (it waits for a healthy dependency) and leaves already running services alone.
func startInOrder(ctx context.Context, cc composeCLI, eng *engine, services []string, created func(svc string, cs []projectContainer) error) error {
	for _, s := range services {
		if err := cc.run(ctx, "up", "--no-start", "--no-deps", s); err != nil {
			return err
		}
		all, err := eng.containers(ctx, cc.project)
		if err != nil {
			return err
		}
		if err := created(s, all[s]); err != nil {
			return err
		}
		if err := cc.run(ctx, "up", "-d", s); err != nil {
			return err
		}
	}
	return nil
}
