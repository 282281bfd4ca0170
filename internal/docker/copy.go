package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/proc"
)

// Labels tailor puts on every copy. CleanupStale finds copies by LabelOwnerPid.
const (
	// LabelCopyOf holds the full ID of the original container.
	LabelCopyOf = "tailor.copy-of"
	// LabelOwnerPid holds the pid of the tailor process that owns the copy.
	LabelOwnerPid = "tailor.owner-pid"
	// LabelOwnerStart holds that process's start time (field 22 of /proc/PID/stat), so
	// a recycled pid is not taken for a live owner.
	LabelOwnerStart = "tailor.owner-start"
	// LabelRun holds a random ID of the learning run.
	LabelRun = "tailor.run"
)

// cleanupTimeout bounds Stop and Remove, which run on a context detached from the
// caller's: a copy must be removed even after Ctrl-C cancelled the run.
const cleanupTimeout = 30 * time.Second

// LearningProfile is the seccomp profile a copy runs under: it allows everything, but
// it makes runc install a filter, so every syscall of the copy runs with seccomp mode
// 2 and the tracer can tell the copy's syscalls from runc's own set-up. The
// architectures are those the host's kernel can run, so 32-bit calls are allowed too.
func LearningProfile() string {
	arches := ""
	switch runtime.GOARCH {
	case "amd64":
		arches = `,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"]`
	case "arm64":
		arches = `,"architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"]`
	}
	return `{"defaultAction":"SCMP_ACT_ALLOW"` + arches + `}`
}

// CopyOptions adjusts PrepareCopy.
type CopyOptions struct {
	// Name is the copy's container name; empty means "<original>-tailor-<run>".
	Name string
	// Labels are added to the copy's labels (after the original's, before tailor's).
	Labels map[string]string
	// SecurityOpt, when non-nil, is used instead of LearningProfile (tailor enforce
	// runs the copy under the generated profile): every option given replaces the
	// original's options of the same kind (seccomp, apparmor, no-new-privileges...),
	// and the original's other options are kept. It must hold a seccomp option.
	SecurityOpt []string
	// CapDrop, when non-nil, replaces the original's dropped and added capabilities
	// with CapDrop and CapAdd (Docker spelling: "ALL", "CHOWN"); nil keeps the
	// original's.
	CapDrop, CapAdd []string
	// Adjust, when set, changes the copy's configuration last, just before it is
	// created (tailor enforce applies the hardened run configuration). A copy left
	// with network mode "none" gets no endpoint settings.
	Adjust func(cfg *container.Config, hc *container.HostConfig)
	// NetworkMode, when set, replaces the original's network mode (package compose
	// points the copy of a service sharing another's network namespace at that
	// service's copy: "container:ID").
	NetworkMode string
}

// Copy is a created copy of a container, run under LearningProfile unless
// CopyOptions.SecurityOpt says otherwise.
type Copy struct {
	c        *Client
	id       string
	name     string
	original string
	run      string
	warnings []string
	// tty is true when the copy has a terminal: its output is then not multiplexed.
	tty bool
}

// ID is the copy's full 64-hex container ID, known from creation on, so the tracer can
// be told which container to follow before Start.
func (cp *Copy) ID() string { return cp.id }

// Name is the copy's container name.
func (cp *Copy) Name() string { return cp.name }

// Original is the full ID of the container this is a copy of.
func (cp *Copy) Original() string { return cp.original }

// Run is the random ID of this learning run, also in the LabelRun label.
func (cp *Copy) Run() string { return cp.run }

// Warnings are the daemon's warnings about the copy's configuration.
func (cp *Copy) Warnings() []string { return cp.warnings }

// PrepareCopy creates, but does not start, a copy of the container nameOrID, which may
// be created, running or exited and is left untouched. The copy has the original's
// image (by ID, so a re-tagged image does not change what is learned), command,
// entrypoint, environment, user, working directory, labels, hostname if one was set,
// mounts (binds, volumes, tmpfs: shared with the original, so a running original and
// the copy see each other's writes), network mode, exposed ports and port bindings,
// resource limits and capabilities. It differs in:
//   - seccomp: LearningProfile replaces any seccomp option, including unconfined;
//     other security options (no-new-privileges, apparmor, label) are kept; with
//     CopyOptions.SecurityOpt and CapDrop the caller chooses these instead;
//   - restart policy "no" and no auto-remove: tailor ends and removes the copy itself;
//   - port bindings of a running original get an ephemeral host port, since the
//     original holds the fixed one; the workload reaches the copy through its own
//     network namespace anyway (RunWorkloadInNetns);
//   - a static IP or MAC address on a user-defined network is dropped, for the same
//     reason;
//   - the labels LabelCopyOf, LabelOwnerPid, LabelOwnerStart and LabelRun.
//
// A privileged container is refused (fail.ErrRefused): Docker never applies a seccomp
// profile to one, so there is no filter for the tracer to key on and no profile that
// enforcement could later install.
func (c *Client) PrepareCopy(ctx context.Context, nameOrID string, opts CopyOptions) (*Copy, error) {
	info, err := c.inspect(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	if info.HostConfig.Privileged {
		return nil, fmt.Errorf("%w: container %q is privileged: docker applies no seccomp profile to privileged containers, so tailor cannot learn one; run it without --privileged (add only the capabilities it needs)", fail.ErrRefused, nameOrID)
	}
	run, err := randomID()
	if err != nil {
		return nil, err
	}
	ownerStart, err := procStart(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("reading tailor's own start time: %w", err)
	}
	running := info.State != nil && info.State.Running

	cfg := *info.Config
	cfg.Image = info.Image
	// Docker fills in the short container ID when no hostname was given; the copy
	// then gets its own short ID the same way.
	if cfg.Hostname == shortID(info.ID) {
		cfg.Hostname = ""
	}
	// A static MAC address belongs to the original, which may be running.
	cfg.MacAddress = "" //nolint:staticcheck // deprecated field, still sent by older daemons
	cfg.Labels = map[string]string{}
	for k, v := range info.Config.Labels {
		cfg.Labels[k] = v
	}
	for k, v := range opts.Labels {
		cfg.Labels[k] = v
	}
	cfg.Labels[LabelCopyOf] = info.ID
	cfg.Labels[LabelOwnerPid] = strconv.Itoa(os.Getpid())
	cfg.Labels[LabelOwnerStart] = ownerStart
	cfg.Labels[LabelRun] = run

	hc := *info.HostConfig
	hc.SecurityOpt = learningSecurityOpt(info.HostConfig.SecurityOpt)
	if opts.SecurityOpt != nil {
		if !slices.ContainsFunc(opts.SecurityOpt, func(o string) bool { return securityOptKind(o) == "seccomp" }) {
			return nil, fmt.Errorf("copy of container %q: security options %v hold no seccomp profile", nameOrID, opts.SecurityOpt)
		}
		hc.SecurityOpt = replaceSecurityOpt(info.HostConfig.SecurityOpt, opts.SecurityOpt)
	}
	if opts.CapDrop != nil {
		hc.CapDrop = slices.Clone(opts.CapDrop)
		hc.CapAdd = slices.Clone(opts.CapAdd)
	}
	if opts.NetworkMode != "" {
		hc.NetworkMode = container.NetworkMode(opts.NetworkMode)
	}
	// A container joining another's network namespace has that one's hostname, which
	// inspect reports as its own; Docker refuses a hostname given with that mode.
	if hc.NetworkMode.IsContainer() {
		cfg.Hostname, cfg.Domainname = "", ""
	}
	hc.AutoRemove = false
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	hc.ContainerIDFile = ""
	hc.PortBindings = copyPortBindings(info.HostConfig.PortBindings, running)

	nc := networkingConfig(info)
	if opts.Adjust != nil {
		opts.Adjust(&cfg, &hc)
		if hc.NetworkMode.IsNone() {
			nc = nil
		}
	}
	name := opts.Name
	if name == "" {
		name = strings.TrimPrefix(info.Name, "/") + "-tailor-" + run
	}
	created, err := c.api.ContainerCreate(ctx, &cfg, &hc, nc, nil, name)
	if cerrdefs.IsNotFound(err) {
		// The daemon names what is missing: the image, a network, a volume plugin.
		return nil, fmt.Errorf("%w: creating a copy of container %q: %s (the original refers to it but it is gone: restore it or recreate the container)", fail.ErrDocker, nameOrID, oneLine(err))
	}
	if err != nil {
		return nil, c.apiError(fmt.Sprintf("creating a copy of container %q", nameOrID), err)
	}
	return &Copy{c: c, id: created.ID, name: name, original: info.ID, run: run, warnings: created.Warnings, tty: cfg.Tty}, nil
}

// learningSecurityOpt keeps every security option but seccomp ones (Docker accepts
// both "seccomp=" and the old "seccomp:"), and adds the learning profile.
func learningSecurityOpt(orig []string) []string {
	var out []string
	for _, o := range orig {
		if strings.HasPrefix(o, "seccomp=") || strings.HasPrefix(o, "seccomp:") {
			continue
		}
		out = append(out, o)
	}
	return append(out, "seccomp="+LearningProfile())
}

// securityOptKind is the key of a security option: "seccomp" for "seccomp=..." and
// the old "seccomp:...", "no-new-privileges" for "no-new-privileges:true".
func securityOptKind(o string) string {
	if i := strings.IndexAny(o, "=:"); i >= 0 {
		return o[:i]
	}
	return o
}

// replaceSecurityOpt keeps the original options of kinds that with does not give, then
// appends with.
func replaceSecurityOpt(orig, with []string) []string {
	var out []string
	for _, o := range orig {
		if !slices.ContainsFunc(with, func(w string) bool { return securityOptKind(w) == securityOptKind(o) }) {
			out = append(out, o)
		}
	}
	return append(out, with...)
}

func copyPortBindings(orig nat.PortMap, ephemeral bool) nat.PortMap {
	if orig == nil {
		return nil
	}
	out := nat.PortMap{}
	for port, bindings := range orig {
		nb := make([]nat.PortBinding, len(bindings))
		for i, b := range bindings {
			nb[i] = b
			if ephemeral {
				nb[i].HostPort = ""
			}
		}
		out[port] = nb
	}
	return out
}

// networkingConfig carries the endpoint settings of a user-defined network (aliases,
// links) over to the copy. Built-in modes (default, bridge, host, none, container:,
// ...) need none. The original's own short-ID alias, static addresses and MAC are left
// out: they belong to the original.
func networkingConfig(info container.InspectResponse) *network.NetworkingConfig {
	mode := info.HostConfig.NetworkMode
	if !mode.IsUserDefined() || info.NetworkSettings == nil {
		return nil
	}
	ep, ok := info.NetworkSettings.Networks[mode.NetworkName()]
	if !ok || ep == nil {
		return nil
	}
	var aliases []string
	for _, a := range ep.Aliases {
		if a != shortID(info.ID) {
			aliases = append(aliases, a)
		}
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		mode.NetworkName(): {Aliases: aliases, Links: ep.Links, DriverOpts: ep.DriverOpts},
	}}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func randomID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a run id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Start starts the copy. If it fails, the copy still exists: call Remove.
func (cp *Copy) Start(ctx context.Context) error {
	if err := cp.c.api.ContainerStart(ctx, cp.id, container.StartOptions{}); err != nil {
		return cp.c.apiError(fmt.Sprintf("starting copy %s", cp.name), err)
	}
	return nil
}

// Pid is the host pid of the copy's init process; an error if the copy is not running.
func (cp *Copy) Pid(ctx context.Context) (int, error) {
	info, err := cp.c.inspect(ctx, cp.id)
	if err != nil {
		return 0, err
	}
	if info.State == nil || !info.State.Running || info.State.Pid <= 0 {
		exit := -1
		status := "unknown"
		if info.State != nil {
			exit, status = info.State.ExitCode, string(info.State.Status)
		}
		return 0, fmt.Errorf("%w: copy %s is not running (state %s, exit code %d)", fail.ErrWorkload, cp.name, status, exit)
	}
	return info.State.Pid, nil
}

// Logs copies the copy's output since it started to stdout and stderr, following it
// until the copy stops or ctx ends. Docker multiplexes both streams on one
// connection unless the container has a TTY, in which case everything goes to stdout.
func (cp *Copy) Logs(ctx context.Context, stdout, stderr io.Writer) error {
	info, err := cp.c.inspect(ctx, cp.id)
	if err != nil {
		return err
	}
	rc, err := cp.c.api.ContainerLogs(ctx, cp.id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return cp.c.apiError(fmt.Sprintf("reading the output of copy %s", cp.name), err)
	}
	defer rc.Close()
	if info.Config.Tty {
		_, err = io.Copy(stdout, rc)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: reading the output of copy %s: %v", fail.ErrDocker, cp.name, err)
	}
	return nil
}

// Wait blocks until the started copy stops, or ctx ends, and returns its exit code.
func (cp *Copy) Wait(ctx context.Context) (int64, error) {
	resc, errc := cp.c.api.ContainerWait(ctx, cp.id, container.WaitConditionNotRunning)
	select {
	case res := <-resc:
		if res.Error != nil && res.Error.Message != "" {
			return res.StatusCode, fmt.Errorf("%w: waiting for copy %s: %s", fail.ErrDocker, cp.name, res.Error.Message)
		}
		return res.StatusCode, nil
	case err := <-errc:
		return -1, cp.c.apiError(fmt.Sprintf("waiting for copy %s", cp.name), err)
	}
}

// Exited waits for the started copy's end in the background and delivers it once.
// It waits without ctx's cancellation: callers stop the copy on every way out, so the
// wait ends by itself; ctx's values are used.
func (cp *Copy) Exited(ctx context.Context) <-chan proc.Exit {
	ch := make(chan proc.Exit, 1)
	go func() {
		st, err := cp.Wait(context.WithoutCancel(ctx))
		ch <- proc.Exit{Status: int(st), Err: err}
	}()
	return ch
}

// Stop asks the copy's init to stop (its stop signal, SIGTERM by default) and kills it
// after grace. Stopping a copy that is stopped or gone is not an error. Stop does not
// stop early when ctx is cancelled, only its values are used.
func (cp *Copy) Stop(ctx context.Context, grace time.Duration) error {
	secs := int(math.Ceil(grace.Seconds()))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+cleanupTimeout)
	defer cancel()
	err := cp.c.api.ContainerStop(ctx, cp.id, container.StopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return cp.c.apiError(fmt.Sprintf("stopping copy %s", cp.name), err)
	}
	return nil
}

// Remove force-removes the copy and its anonymous volumes. It is safe to call more
// than once, after a failed Start and after Ctrl-C (like Stop, it ignores ctx's
// cancellation, so deferred clean-up still runs).
func (cp *Copy) Remove(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := cp.c.api.ContainerRemove(ctx, cp.id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return cp.c.apiError(fmt.Sprintf("removing copy %s", cp.name), err)
	}
	return nil
}
