// Package compose learns, hardens and enforces a whole Compose project: one recording
// and one profile bundle per service, and compose.tailor.yml, a Compose override file
// that confines every service with its bundle. Compose files are parsed with
// compose-go (the Compose Specification's reference loader); containers are created
// and started by the docker-compose client (Debian's Compose v1, 1.29), so start
// order, depends_on conditions and healthchecks are Compose's own; the containers of
// a project are found through the labels Compose puts on them.
package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tailor-sec/tailor/internal/fail"
)

// Labels Compose (v1 and v2) puts on every container of a project.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
)

// serviceName is what a service may be called here: its name becomes a file and a
// directory name in the recording and bundle directories.
var serviceName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Project is what tailor needs of a Compose project.
type Project struct {
	// Name is the project name (-p), as Compose normalises it.
	Name string
	// Files are the Compose files, absolute.
	Files []string
	// Dir is the project directory (that of the first file).
	Dir string
	// Services are the services in start order: each after the services it depends
	// on, ties broken by name.
	Services []Service
}

// Service is one service of a project.
type Service struct {
	Name      string
	DependsOn []string
	// NetworkMode is the service's network_mode ("service:web", "none", ...).
	NetworkMode string
	Privileged  bool
	// SecurityOpt are the service's own security options.
	SecurityOpt []string
	// Healthcheck is true when the service has a healthcheck (it runs in the
	// container and is learned like any docker exec).
	Healthcheck bool
}

// Load parses the Compose files with compose-go. name overrides the project name
// (empty: COMPOSE_PROJECT_NAME, the files' name: key, or the directory's name, as
// Compose decides).
func Load(ctx context.Context, files []string, name string) (*Project, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no Compose file given", fail.ErrBadInput)
	}
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("%w: compose file %s: %v", fail.ErrBadInput, f, err)
		}
		if _, err := os.Stat(a); err != nil {
			return nil, fmt.Errorf("%w: compose file: %v", fail.ErrBadInput, err)
		}
		abs[i] = a
	}
	opts := []cli.ProjectOptionsFn{cli.WithOsEnv, cli.WithDotEnv}
	if name != "" {
		opts = append(opts, cli.WithName(name))
	}
	po, err := cli.NewProjectOptions(abs, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: compose file: %v", fail.ErrBadInput, err)
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: loading %s: %v", fail.ErrBadInput, abs[0], err)
	}
	return fromTypes(p, abs)
}

func fromTypes(p *types.Project, files []string) (*Project, error) {
	out := &Project{Name: p.Name, Files: files, Dir: p.WorkingDir}
	byName := map[string]Service{}
	for name, s := range p.Services {
		if !serviceName.MatchString(name) {
			return nil, fmt.Errorf("%w: service name %q: tailor names files after services, use letters, digits, '.', '_' and '-'", fail.ErrBadInput, name)
		}
		svc := Service{Name: name, NetworkMode: s.NetworkMode, Privileged: s.Privileged,
			SecurityOpt: slices.Clone(s.SecurityOpt), Healthcheck: s.HealthCheck != nil && !s.HealthCheck.Disable}
		for dep := range s.DependsOn {
			svc.DependsOn = append(svc.DependsOn, dep)
		}
		slices.Sort(svc.DependsOn)
		byName[name] = svc
	}
	order, err := startOrder(byName)
	if err != nil {
		return nil, err
	}
	for _, n := range order {
		out.Services = append(out.Services, byName[n])
	}
	return out, nil
}

// startOrder sorts services so that each comes after its dependencies (Kahn's
// algorithm, ready services taken by name so the order is deterministic).
func startOrder(svcs map[string]Service) ([]string, error) {
	indeg := map[string]int{}
	users := map[string][]string{}
	for n, s := range svcs {
		indeg[n] += 0
		for _, d := range s.DependsOn {
			if _, ok := svcs[d]; !ok {
				continue // a dependency outside the selection is not started by us
			}
			indeg[n]++
			users[d] = append(users[d], n)
		}
	}
	var ready, order []string
	for n, d := range indeg {
		if d == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		slices.Sort(ready)
		n := ready[0]
		ready = ready[1:]
		order = append(order, n)
		for _, u := range users[n] {
			if indeg[u]--; indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(order) != len(svcs) {
		return nil, fmt.Errorf("%w: the services' depends_on form a cycle", fail.ErrBadInput)
	}
	return order, nil
}

// Service returns the named service.
func (p *Project) Service(name string) (Service, bool) {
	for _, s := range p.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Select returns the services named (all when names is empty), in start order, or
// an error naming one that the project does not have.
func (p *Project) Select(names []string) ([]Service, error) {
	if len(names) == 0 {
		return p.Services, nil
	}
	for _, n := range names {
		if _, ok := p.Service(n); !ok {
			return nil, fmt.Errorf("%w: --service %s: the project has no such service (it has %v)", fail.ErrBadInput, n, p.names())
		}
	}
	var out []Service
	for _, s := range p.Services {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (p *Project) names() []string {
	var n []string
	for _, s := range p.Services {
		n = append(n, s.Name)
	}
	return n
}
