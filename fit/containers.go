package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/tailor-sec/tailor/internal/dockertest"
)

// containerSpec makes a program of the corpus a container: an image built on the
// run's daemon from the host's Debian packages (no registry), and the container
// each phase runs.
type containerSpec struct {
	// context is the image's build context; lib is the attack library, which the
	// image holds at attackLib.
	context func(lib []byte) (*bytes.Buffer, error)
	// binds are a phase's bind mounts (HOST:CONTAINER[:ro]), dir the phase's host
	// directory (prepared by setup).
	binds func(dir string) []string
	// port is the program's port on the container's loopback.
	port int
}

// attackLib is where the fit images hold the attack library (testdata/fit/attack.c).
const attackLib = "/usr/lib/fit/attack.so"

// fitLabel marks the containers fit creates, with the run's directory as its value.
const fitLabel = "tailor.fit"

// docker is the daemon the container programs run on, started on first use.
type docker struct {
	env  *dockertest.Env
	stop func() error
	// images built in this run, by program name.
	images map[string]string
}

// daemon returns the run's daemon, starting a private one on first use.
func (r *runner) daemon() (*docker, error) {
	if r.dk != nil {
		return r.dk, nil
	}
	env, stop, err := dockertest.Start()
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	r.dk = &docker{env: env, stop: stop, images: map[string]string{}}
	return r.dk, nil
}

// closeDaemon removes the containers fit created and stops a private daemon.
func (r *runner) closeDaemon() error {
	if r.dk == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := r.dk.env.Client.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", fitLabel+"="+r.root))})
	if err == nil {
		for _, c := range list {
			r.dk.env.Client.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
	return r.dk.stop()
}

// image builds p's image on the daemon (once per run) and returns its tag.
func (r *runner) image(p *program) (string, error) {
	dk, err := r.daemon()
	if err != nil {
		return "", err
	}
	if tag, ok := dk.images[p.name]; ok {
		return tag, nil
	}
	lib, err := os.ReadFile(r.lib)
	if err != nil {
		return "", err
	}
	buildCtx, err := p.container.context(lib)
	if err != nil {
		return "", err
	}
	tag := "tailor-fit/" + strings.ReplaceAll(p.name, " ", "-") + ":run"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := dk.env.BuildImage(ctx, buildCtx, tag); err != nil {
		return "", fmt.Errorf("building %s: %w", tag, err)
	}
	dk.images[p.name] = tag
	return tag, nil
}

// create makes a container of p's image for a phase (not started): its network is
// its own loopback only, its binds the phase's, and env is added to the attack
// library's LD_PRELOAD.
func (r *runner) create(p *program, name, dir string, env []string) error {
	tag, err := r.image(p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := &container.Config{Image: tag, Env: append([]string{"LD_PRELOAD=" + attackLib}, env...),
		Labels: map[string]string{fitLabel: r.root}}
	hc := &container.HostConfig{NetworkMode: "none", Binds: p.container.binds(dir)}
	if _, err := r.dk.env.Client.ContainerCreate(ctx, cfg, hc, nil, nil, name); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	return nil
}

// containerName is the name of p's container for a phase of this run.
func (r *runner) containerName(p *program, phase string) string {
	return fmt.Sprintf("fit-%s-%s-%d", strings.ReplaceAll(p.name, " ", "-"), strings.ToLower(phase), r.port)
}

// base is what both fit images hold besides their program: a user database, the
// attack library, a shell for the shell step and /etc/shadow for the shadow step
// (the files an intruder in a Debian image finds).
func baseFiles(lib []byte, users, groups string) []dockertest.File {
	return []dockertest.File{
		{Name: "rootfs/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\n" + users + "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")},
		{Name: "rootfs/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nshadow:x:42:\n" + groups + "nogroup:x:65534:\n")},
		{Name: "rootfs/etc/shadow", Mode: 0o640, Gid: 42, Data: []byte("root:*:19000:0:99999:7:::\n")},
		{Name: "rootfs/etc/nsswitch.conf", Mode: 0o644, Data: []byte("passwd: files\ngroup: files\nshadow: files\nhosts: files\n")},
		{Name: "rootfs/etc/hosts", Mode: 0o644, Data: []byte("127.0.0.1 localhost\n")},
		{Name: "rootfs/tmp", Mode: 0o1777, Dir: true},
		{Name: "rootfs/root", Mode: 0o700, Dir: true},
		{Name: "rootfs" + attackLib, Mode: 0o755, Data: lib},
	}
}

// nginxDockerfile runs nginx with fit's configuration (two www-data workers,
// autoindex on /files/) on port 8080 of the container's loopback, its document root
// a bind mount; it stops gracefully (SIGQUIT), as the nginx image from Docker Hub does.
const nginxDockerfile = `FROM scratch
COPY rootfs/ /
STOPSIGNAL SIGQUIT
CMD ["/usr/sbin/nginx", "-p", "/srv/nginx/", "-c", "nginx.conf", "-e", "logs/error.log"]
`

// nginxContainerPort is the port nginx listens on inside its container.
const nginxContainerPort = 8080

var nginxContainer = program{
	name: "nginx-container", comm: "nginx", server: true,
	setup: nginx.setup,
	workload: func(e *env, dir, phase, _ string) error {
		// The same requests as the local command's; no reload or stop signal: the
		// workload is not in the container's pid namespace, and tailor stops the copy
		// (with the image's SIGQUIT).
		if err := waitPort(e.port, 60*time.Second); err != nil {
			return err
		}
		return httpGet(e.port, nginxPaths(phase), nginxPageOK)
	},
	container: &containerSpec{
		context: func(lib []byte) (*bytes.Buffer, error) {
			conf := strings.ReplaceAll(nginxConf, "PORT", fmt.Sprint(nginxContainerPort))
			files := append(baseFiles(lib, "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n", "www-data:x:33:\n"),
				dockertest.File{Name: "rootfs/srv/nginx/nginx.conf", Mode: 0o644, Data: []byte(conf)},
				dockertest.File{Name: "rootfs/srv/nginx/logs", Mode: 0o755, Dir: true},
				dockertest.File{Name: "rootfs/srv/nginx/tmp", Mode: 0o755, Dir: true},
				dockertest.File{Name: "rootfs/srv/nginx/www", Mode: 0o755, Dir: true})
			return dockertest.RootfsContext(nginxDockerfile, []string{"/usr/sbin/nginx", "/bin/sh"}, []string{"/etc/nginx/mime.types"}, files)
		},
		binds: func(dir string) []string { return []string{dir + "/www:/srv/nginx/www:ro"} },
		port:  nginxContainerPort,
	},
}

// pgUID and pgGID own PostgreSQL's data in its image.
const pgUID, pgGID = 101, 104

// postgresDockerfile makes the cluster at build time (initdb as postgres, as the
// Debian and Docker Hub images do on first start) and runs the server on the
// container's loopback, its socket in /tmp.
const postgresDockerfile = `FROM scratch
COPY rootfs/ /
COPY --chown=101:104 pgstate/ /var/lib/postgresql/
USER postgres
ENV TZ=Etc/UTC
RUN ["/usr/lib/postgresql/15/bin/initdb", "-D", "/var/lib/postgresql/data", "--no-locale", "--auth=trust", "-U", "postgres", "--no-sync"]
CMD ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data", "-k", "/tmp", "-c", "listen_addresses=127.0.0.1", "-c", "logging_collector=off"]
`

// postgresContainerPort is PostgreSQL's port inside its container.
const postgresContainerPort = 5432

var postgresContainer = program{
	name: "postgresql-container", comm: "postgres", server: true,
	setup:    func(e *env, dir, phase string) error { return nil },
	workload: postgres.workload,
	container: &containerSpec{
		context: func(lib []byte) (*bytes.Buffer, error) {
			files := append(baseFiles(lib, fmt.Sprintf("postgres:x:%d:%d:PostgreSQL administrator:/var/lib/postgresql:/bin/sh\n", pgUID, pgGID),
				fmt.Sprintf("postgres:x:%d:\n", pgGID)),
				dockertest.File{Name: "pgstate/data", Mode: 0o700, Dir: true})
			pg := "/usr/lib/postgresql/15"
			return dockertest.RootfsContext(postgresDockerfile,
				[]string{pg + "/bin/postgres", pg + "/bin/initdb", pg + "/lib/plpgsql.so", pg + "/lib/dict_snowball.so", "/bin/sh"},
				[]string{"/usr/share/postgresql/15", "/usr/share/zoneinfo/Etc/UTC"}, files)
		},
		binds: func(string) []string { return nil },
		port:  postgresContainerPort,
	},
}

// containerProgram measures a container program: learned with tailor learn
// --container under workload A, replayed and used otherwise (B) with tailor enforce
// --container (the bundle's seccomp profile, capabilities, no-new-privileges and
// hardened run configuration; AppArmor where the kernel has it), attacked in a
// container per step.
func (r *runner) containerProgram(p *program) *progResult {
	res := &progResult{name: p.name, container: true}
	fail := func(format string, args ...any) *progResult {
		res.setupErr = fmt.Sprintf(format, args...)
		return res
	}
	e := &env{root: r.root, port: p.container.port}
	base := filepath.Join(r.root, p.name)
	dirA, dirB := filepath.Join(base, "a"), filepath.Join(base, "b")
	prof, strict := filepath.Join(base, "profile"), filepath.Join(base, "profile-strict")
	for _, d := range []struct{ dir, phase string }{{dirA, "A"}, {dirB, "B"}} {
		if err := r.fresh(p, e, d.dir, d.phase); err != nil {
			return fail("setup: %v", err)
		}
		if err := r.create(p, r.containerName(p, d.phase), d.dir, nil); err != nil {
			return fail("%v", err)
		}
	}
	rec := filepath.Join(base, "a.rec.json")
	cmd := exec.Command(r.tailor, "learn", "--container", r.containerName(p, "A"), "-o", rec, "--workload", r.workloadCmd(p, "A", dirA, e.port))
	cmd.Env = r.dockerEnv()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fail("learn: %v: %s", err, tail(b))
	}
	if b, err := exec.Command(r.tailor, "generate", "-o", prof, rec).CombinedOutput(); err != nil {
		return fail("generate: %v: %s", err, b)
	}
	if b, err := exec.Command(r.tailor, "generate", "--strict", "-o", strict, rec).CombinedOutput(); err != nil {
		return fail("generate --strict: %v: %s", err, b)
	}
	res.syscalls, res.files, res.caps = bundleSize(prof)
	res.strictSyscalls, res.strictFiles, _ = bundleSize(strict)
	for i := 0; i < r.replays; i++ {
		res.replays = append(res.replays, r.containerPhase(p, prof, dirA, "A"))
	}
	res.b = r.containerPhase(p, prof, dirB, "B")
	for _, step := range r.attacks {
		res.attacks = append(res.attacks, r.attack(p, e, prof, dirA, step))
	}
	return res
}

// containerPhase runs workload phase against a copy of the phase's container under
// the bundle: it worked when tailor enforce --container exited 0 (the workload
// succeeded, and the copy stopped when tailor stopped it).
func (r *runner) containerPhase(p *program, prof, dir, phase string) phaseResult {
	an := filepath.Join(dir + ".anomalies-" + phase + strconv.FormatInt(time.Now().UnixNano(), 36) + ".jsonl")
	defer os.Remove(an)
	var out bytes.Buffer
	cmd := r.enforcedContainer(r.containerName(p, phase), prof, an, r.workloadCmd(p, phase, dir, p.container.port), &out, &out)
	var res phaseResult
	if err := cmd.Run(); err != nil {
		res.err = fmt.Sprintf("%v: %s", err, tail(out.Bytes()))
	} else {
		res.worked = true
	}
	for _, a := range readAnomalies(an) {
		res.anomalies = append(res.anomalies, a.Kind+" "+a.Detail)
		if os.Getenv("FIT_KEEP") != "" {
			fmt.Fprintf(os.Stderr, "fit: %s %s: %s %s\n", p.name, phase, a.Kind, a.Detail)
		}
	}
	return res
}

// enforcedContainer is `tailor enforce --container NAME`, with a workload unless it
// is "".
func (r *runner) enforcedContainer(name, prof, anomalies, workload string, stderr, stdout io.Writer) *exec.Cmd {
	args := []string{"enforce", "--profile", prof, "--container", name, "--anomalies", anomalies}
	if workload != "" {
		args = append(args, "--workload", workload)
	}
	cmd := exec.Command(r.tailor, args...)
	cmd.Dir, cmd.Env = r.root, r.dockerEnv()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd
}

// workloadCmd is the shell command tailor runs as a workload: this program's
// `workload` mode for p and phase.
func (r *runner) workloadCmd(p *program, phase, dir string, port int) string {
	return fmt.Sprintf("%s workload %q %s %q %d", r.self, p.name, phase, dir, port)
}

// dockerEnv is tailor's environment with the run's daemon.
func (r *runner) dockerEnv() []string {
	return append(os.Environ(), "DOCKER_HOST="+r.dk.env.Host)
}
