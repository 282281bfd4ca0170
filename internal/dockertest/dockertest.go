// Package dockertest gives tests a Docker daemon and locally built test images.
//
// A test binary that uses it calls Main from its TestMain. Daemon then uses a daemon
// that already answers (DOCKER_HOST, else /var/run/docker.sock) or starts one private
// dockerd for the whole binary, with its state, sockets and containerd under one short
// temporary directory and no bridge or iptables rules, so it cannot touch the host's
// network. Main stops that daemon by pid and removes its directory.
//
// With CI=true a daemon that cannot be had is a test failure; otherwise the test is
// skipped with the reason.
package dockertest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"
)

// TestLabel marks every container a test creates, so Main can find any a test left
// behind. Its value names the test binary's run, so that on a daemon shared by test
// binaries running in parallel each removes only its own leftovers.
const TestLabel = "tailor.test"

// runEnv passes the run token to child processes a test starts, so the containers
// they create count as the run's own.
const runEnv = "TAILOR_DOCKERTEST_RUN"

var runToken = sync.OnceValue(func() string {
	if tok := os.Getenv(runEnv); tok != "" {
		return tok
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails on Linux (crypto/rand documents it)
	tok := hex.EncodeToString(b)
	_ = os.Setenv(runEnv, tok)
	return tok
})

// Labels returns the labels every container a test creates must carry.
func Labels() map[string]string { return map[string]string{TestLabel: runToken()} }

// Env is the daemon a test talks to.
type Env struct {
	// Host is the DOCKER_HOST value that reaches the daemon (unix://...).
	Host string
	// Client is connected to Host; tests share it and must not close it.
	Client *client.Client
	// Own is true when this test binary started the daemon itself.
	Own bool
	// StartTime is how long the private daemon took to answer its first ping.
	StartTime time.Duration
}

var (
	once     sync.Once
	shared   *Env
	startErr error
	own      *ownDaemon
)

// Unavailable ends a test that needs something this machine lacks: a failure when
// CI=true (CI must run every test), a skip with the reason otherwise. `make test-unit`
// sets TAILOR_UNPRIVILEGED=1 to ask for the unprivileged tests only: then it always
// skips.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("TAILOR_UNPRIVILEGED") == "1" {
		t.Skip("TAILOR_UNPRIVILEGED=1: " + reason)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", reason)
	}
	t.Skip(reason)
}

// Daemon returns the shared daemon, starting a private one on first use, and points
// DOCKER_HOST at it for the rest of the test.
func Daemon(t testing.TB) *Env {
	t.Helper()
	if os.Getenv("TAILOR_UNPRIVILEGED") == "1" {
		t.Skip("TAILOR_UNPRIVILEGED=1: this test needs a docker daemon")
	}
	once.Do(func() { shared, startErr = setup() })
	if startErr != nil {
		Unavailable(t, startErr.Error())
	}
	t.Setenv("DOCKER_HOST", shared.Host)
	return shared
}

// Main runs the package's tests, runs cleanups, then removes containers the tests left behind (and
// fails the run if there were any) and stops the private daemon. Call it from TestMain.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if shared != nil {
		if left, err := removeLeftovers(shared.Client); err != nil || len(left) > 0 {
			fmt.Fprintf(os.Stderr, "dockertest: containers left behind by tests: %v (cleanup error: %v)\n", left, err)
			code = 1
		}
		_ = shared.Client.Close()
	}
	if own != nil {
		if err := own.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "dockertest: stopping the test daemon: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func setup() (*Env, error) {
	env, d, err := connect()
	own = d
	return env, err
}

// connect reaches a daemon that answers, else starts a private one (returned, for
// the caller to stop).
func connect() (*Env, *ownDaemon, error) {
	for _, host := range candidateHosts() {
		if cli, err := pingHost(host); err == nil {
			return &Env{Host: host, Client: cli}, nil, nil
		}
	}
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("no docker daemon answers and starting a test dockerd needs root")
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, nil, errors.New("no docker daemon answers and dockerd is not installed (apt-get install docker.io)")
	}
	d, err := startDaemon()
	if err != nil {
		return nil, nil, err
	}
	cli, err := newClient(d.host)
	if err != nil {
		return nil, d, err
	}
	return &Env{Host: d.host, Client: cli, Own: true, StartTime: d.startTime}, d, nil
}

// Start gives a program that is not a test (make fit) what Daemon gives a test: a
// daemon that already answers (DOCKER_HOST, /var/run/docker.sock), or a private
// dockerd as Daemon starts one, with no bridge or iptables rules. stop closes the
// client and stops the private daemon, if one was started, by pid.
func Start() (env *Env, stop func() error, err error) {
	env, d, err := connect()
	if err != nil {
		if d != nil {
			err = errors.Join(err, d.stop())
		}
		return nil, nil, err
	}
	return env, func() error {
		err := env.Client.Close()
		if d != nil {
			err = errors.Join(err, d.stop())
		}
		return err
	}, nil
}

func candidateHosts() []string {
	var hosts []string
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		hosts = append(hosts, h)
	}
	return append(hosts, "unix:///var/run/docker.sock")
}

func newClient(host string) (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
}

func pingHost(host string) (*client.Client, error) {
	cli, err := newClient(host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return cli, nil
}

// removeLeftovers force-removes every container carrying TestLabel and returns their
// names, sorted.
func removeLeftovers(cli *client.Client) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", TestLabel+"="+runToken()))})
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	for _, c := range list {
		names = append(names, strings.Join(c.Names, ","))
		errs = append(errs, cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}))
	}
	sort.Strings(names)
	return names, errors.Join(errs...)
}

// ownDaemon is a dockerd this test binary started.
type ownDaemon struct {
	dir       string
	host      string
	cmd       *exec.Cmd
	exited    chan struct{}
	release   chan struct{}
	startTime time.Duration
}

func startDaemon() (*ownDaemon, error) {
	// Short: the unix socket path limit is 108 bytes, and containerd puts its own
	// sockets deep under the exec root.
	dir, err := os.MkdirTemp("/tmp", "tdk")
	if err != nil {
		return nil, fmt.Errorf("making the test daemon directory: %w", err)
	}
	// An empty config file keeps the host's /etc/docker/daemon.json out of the tests.
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d := &ownDaemon{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock"), exited: make(chan struct{}), release: make(chan struct{})}
	d.cmd = exec.Command("dockerd",
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", d.host)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Pdeathsig fires when the thread that forked dockerd dies, so that thread is kept
	// locked in a goroutine until stop: a test binary killed by a timeout then takes
	// its daemon with it instead of leaving it running.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	begin := time.Now()
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		err := d.cmd.Start()
		started <- err
		if err != nil {
			return
		}
		go func() { _ = d.cmd.Wait(); close(d.exited) }()
		<-d.release
	}()
	if err := <-started; err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting dockerd: %w", err)
	}
	if err := d.waitReady(time.Minute); err != nil {
		stopErr := d.stop()
		return nil, errors.Join(err, stopErr)
	}
	d.startTime = time.Since(begin)
	return d, nil
}

// waitReady polls the daemon with ping until it answers, exits, or the deadline passes.
func (d *ownDaemon) waitReady(limit time.Duration) error {
	cli, err := newClient(d.host)
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.After(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("test dockerd exited before answering: %s", d.lastLogLine())
		case <-deadline:
			return fmt.Errorf("test dockerd did not answer within %v: %s", limit, d.lastLogLine())
		case <-tick.C:
		}
	}
}

func (d *ownDaemon) lastLogLine() string {
	f, err := os.Open(filepath.Join(d.dir, "dockerd.log"))
	if err != nil {
		return "no log"
	}
	defer f.Close()
	last := "empty log"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			last = s
		}
	}
	return last
}

// stop ends dockerd (SIGTERM, then SIGKILL after a grace period), ends the containerd
// it started if that outlived it, unmounts whatever is left under the directory and
// removes it.
func (d *ownDaemon) stop() error {
	var errs []error
	containerdPid := readPid(filepath.Join(d.dir, "exec", "containerd", "containerd.pid"))
	if d.cmd.Process != nil {
		errs = append(errs, terminate(d.cmd.Process.Pid, d.exited, 30*time.Second))
	}
	close(d.release)
	if containerdPid > 0 && unix.Kill(containerdPid, 0) == nil {
		errs = append(errs, terminate(containerdPid, pidGone(containerdPid), 10*time.Second))
	}
	errs = append(errs, unmountUnder(d.dir), os.RemoveAll(d.dir))
	return errors.Join(errs...)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// terminate sends SIGTERM to pid and waits for gone; after grace it sends SIGKILL.
func terminate(pid int, gone <-chan struct{}, grace time.Duration) error {
	if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	select {
	case <-gone:
		return nil
	case <-time.After(grace):
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	select {
	case <-gone:
		return fmt.Errorf("pid %d ignored SIGTERM for %v and was killed", pid, grace)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("pid %d survived SIGKILL", pid)
	}
}

// pidGone closes its channel once pid, which is not our child, no longer exists. It
// polls through a pidfd, which becomes readable when the process exits.
func pidGone(pid int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	return ch
}

// unmountUnder lazily unmounts every mount point below dir, deepest first: overlay
// and shm mounts of containers the daemon did not get to clean up.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
