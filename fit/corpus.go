package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// program is one real program of the corpus, run as a local command.
type program struct {
	name string
	// comm is the name the attack library acts in (the program, not a wrapper).
	comm string
	// server programs run until stopped; the others run once per phase.
	server bool
	// restart: the server's state outlives a run and its next start depends on it
	// (nginx's reopened logs belong to the worker user). Learning runs the server
	// twice, the second time over the state the first left (a restart), and the bundle
	// is made from both recordings; replays and attacks start over the state the run
	// before them left, never from a fresh directory.
	restart bool
	// setup lays out the working directory dir of a phase: configuration, content,
	// data. phase is "A" (learning and replays) or "B" (held-out use).
	setup func(e *env, dir, phase string) error
	// argv is the command, run in its working directory.
	argv func(e *env, dir string) []string
	// steps, for a one-shot program, are commands run one after the other (each
	// learned into its own recording, the bundle made from all); argv is then unused.
	steps [][]string
	// stdin, for a one-shot program, is the phase's input.
	stdin func(e *env, dir, phase string) string
	// workload drives a server for a phase and checks its answers; for a one-shot
	// program it checks the output left in dir.
	workload func(e *env, dir, phase string, out string) error
	// stop, when set, stops the server the way its operators do and waits until it
	// has gone (the harness's SIGTERM after it finds nothing left); the workload calls
	// it last, so learning sees that stop too. nil: the harness's SIGTERM stops it.
	stop func(e *env, dir string) error
	// container, when set, runs the program as a container (containers.go): learned
	// with tailor learn --container, replayed with tailor enforce --container.
	container *containerSpec
}

// env is what every program's phase gets.
type env struct {
	root string // the run's directory
	port int    // the program's TCP port
}

func httpGet(port int, paths []string, want func(path, body string) bool) error {
	c := &http.Client{Timeout: 5 * time.Second}
	for _, p := range paths {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, p))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !want(p, string(b)) {
			return fmt.Errorf("GET %s: %d %q", p, resp.StatusCode, truncate(string(b)))
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// waitPort waits until something accepts on 127.0.0.1:port.
func waitPort(port int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d never opened: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a port a server opens
	}
}

// pages writes n pages named prefix-i.html under dir.
func pages(dir, prefix string, n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d.html", prefix, i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte("<p>"+name+"</p>\n"), 0o644); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}

func writeFiles(dir string, files map[string]string) error {
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

const nginxConf = `daemon off;
master_process on;
user www-data www-data;
worker_processes 2;
pid nginx.pid;
error_log logs/error.log notice;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log logs/access.log;
    sendfile on;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {
        listen 127.0.0.1:PORT;
        root www;
        location /files/ { autoindex on; }
    }
}
`

var nginx = program{
	name: "nginx", comm: "nginx", server: true, restart: true,
	setup: func(e *env, dir, phase string) error {
		for _, d := range []string{"www/files", "logs", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		if _, err := pages(filepath.Join(dir, "www"), "a", 6); err != nil {
			return err
		}
		if _, err := pages(filepath.Join(dir, "www/files"), "f", 2); err != nil {
			return err
		}
		if phase == "B" {
			// Pages added after learning, and more files in the autoindexed directory.
			if _, err := pages(filepath.Join(dir, "www"), "new", 8); err != nil {
				return err
			}
			if _, err := pages(filepath.Join(dir, "www/files"), "g", 3); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(strings.ReplaceAll(nginxConf, "PORT", strconv.Itoa(e.port))), 0o644)
	},
	argv: func(e *env, dir string) []string { return []string{"/usr/sbin/nginx", "-p", dir, "-c", "nginx.conf"} },
	workload: func(e *env, dir, phase, _ string) error {
		if err := waitPort(e.port, 30*time.Second); err != nil {
			return err
		}
		if err := httpGet(e.port, nginxPaths(phase), nginxPageOK); err != nil {
			return err
		}
		if phase != "A" {
			return nginxQuit(e, dir)
		}
		// A reload (new workers on the configuration read again) and a log reopen, as
		// logrotate's postrotate does: the master reopens its logs and gives them to
		// the worker user, the state the next start finds.
		for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1} {
			if err := signalPidFile(filepath.Join(dir, "nginx.pid"), sig); err != nil {
				return err
			}
		}
		// The reopen has happened when the logs belong to the worker user.
		if err := waitFor(30*time.Second, "nginx reopening its logs", func() error {
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(dir, "logs", "access.log"), &st); err != nil {
				return err
			}
			if u, err := user.Lookup("www-data"); err != nil || u.Uid != strconv.Itoa(int(st.Uid)) {
				return fmt.Errorf("access.log belongs to uid %d", st.Uid)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := waitFor(30*time.Second, "nginx answering after its reload and reopen", func() error {
			return httpGet(e.port, []string{"/a-1.html"}, nginxPageOK)
		}); err != nil {
			return err
		}
		return nginxQuit(e, dir)
	},
	stop: nginxQuit,
}

// nginxQuit stops nginx gracefully (SIGQUIT, as Debian's nginx.service and
// `nginx -s quit` do: workers finish their requests) and waits until the master has
// removed its pid file, the last thing it does before it exits. A fast stop
// (SIGTERM) with workers still running takes another path, which arms a timer
// (setitimer) to kill them if they linger.
func nginxQuit(e *env, dir string) error {
	pidFile := filepath.Join(dir, "nginx.pid")
	if err := signalPidFile(pidFile, syscall.SIGQUIT); err != nil {
		return fmt.Errorf("quit: %w", err)
	}
	return waitFor(30*time.Second, "nginx stopping", func() error {
		if _, err := os.Stat(pidFile); err == nil {
			return errors.New("pid file still there")
		}
		return nil
	})
}

// nginxPaths are the pages a phase asks nginx for: in B, pages and listed files added
// after learning.
func nginxPaths(phase string) []string {
	if phase == "B" {
		return []string{"/new-0.html", "/new-3.html", "/new-7.html", "/a-2.html", "/files/", "/files/g-1.html", "/files/f-1.html"}
	}
	return []string{"/a-0.html", "/a-1.html", "/a-2.html", "/a-3.html", "/a-4.html", "/a-5.html", "/files/", "/files/f-0.html"}
}

// nginxPageOK: a page holds its own name; a listing is any 200.
func nginxPageOK(p, body string) bool {
	return strings.HasSuffix(p, "/") || strings.Contains(body, filepath.Base(p))
}

// signalPidFile sends sig to the process whose pid the file holds.
func signalPidFile(file string, sig syscall.Signal) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return syscall.Kill(pid, sig)
}

// waitFor calls try until it succeeds or d has passed, and returns its last error.
func waitFor(d time.Duration, what string, try func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		time.Sleep(100 * time.Millisecond) // polling the server's state
	}
}

// redis speaks RESP over TCP.
func redisDo(conn net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch line[0] {
	case '-':
		return "", errors.New(line)
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		var parts []string
		for i := 0; i < n; i++ {
			l, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(l, "$") {
				l2, err := r.ReadString('\n')
				if err != nil {
					return "", err
				}
				parts = append(parts, strings.TrimRight(l2, "\r\n"))
			}
		}
		return strings.Join(parts, ","), nil
	}
	return line[1:], nil
}

var redis = program{
	name: "redis", comm: "redis-server", server: true,
	setup: func(e *env, dir, phase string) error {
		conf := fmt.Sprintf("bind 127.0.0.1\nport %d\ndaemonize no\nsave \"\"\nappendonly no\ndir %s\ndbfilename dump.rdb\nlogfile \"\"\n", e.port, dir)
		return os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(conf), 0o644)
	},
	argv: func(e *env, dir string) []string { return []string{"/usr/bin/redis-server", "redis.conf"} },
	workload: func(e *env, dir, phase, _ string) error {
		if err := waitPort(e.port, 30*time.Second); err != nil {
			return err
		}
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", e.port))
		if err != nil {
			return err
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		cmds := [][]string{{"SET", "a", "1"}, {"GET", "a"}, {"SET", "b", "2"}, {"INCR", "a"}, {"DEL", "b"}, {"SAVE"}, {"BGSAVE"}}
		if phase == "B" {
			// Other keys and types, stats, a background save (a fork and temp-<pid>.rdb).
			cmds = [][]string{{"SET", "user:42", "x"}, {"LPUSH", "q", "1", "2"}, {"LRANGE", "q", "0", "-1"},
				{"HSET", "h", "f", "v"}, {"HGET", "h", "f"}, {"EXPIRE", "user:42", "100"}, {"INFO"}, {"DBSIZE"}, {"BGSAVE"}}
		}
		for _, c := range cmds {
			if _, err := redisDo(conn, r, c...); err != nil {
				return fmt.Errorf("redis %v: %w", c, err)
			}
		}
		// Wait for the background save to end.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			info, err := redisDo(conn, r, "INFO", "persistence")
			if err != nil {
				return err
			}
			if strings.Contains(info, "rdb_bgsave_in_progress:0") {
				if !strings.Contains(info, "rdb_last_bgsave_status:ok") {
					return fmt.Errorf("bgsave failed: %s", truncate(info))
				}
				return nil
			}
			time.Sleep(50 * time.Millisecond) // polling the server's state
		}
		return errors.New("bgsave never ended")
	},
}

var pythonHTTP = program{
	name: "python3 http.server", comm: "python3", server: true,
	setup: func(e *env, dir, phase string) error {
		if _, err := pages(dir, "doc", 4); err != nil {
			return err
		}
		if phase == "B" {
			if _, err := pages(dir, "added", 5); err != nil {
				return err
			}
		}
		return nil
	},
	argv: func(e *env, dir string) []string {
		return []string{"/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", strconv.Itoa(e.port)}
	},
	workload: func(e *env, dir, phase, _ string) error {
		if err := waitPort(e.port, 30*time.Second); err != nil {
			return err
		}
		paths := []string{"/doc-0.html", "/doc-1.html", "/doc-2.html", "/"}
		if phase == "B" {
			paths = []string{"/added-0.html", "/added-1.html", "/added-2.html", "/added-3.html", "/added-4.html", "/doc-3.html", "/"}
		}
		return httpGet(e.port, paths, func(p, body string) bool { return p == "/" || strings.Contains(body, p[1:]) })
	},
}

var sqlite = program{
	name: "sqlite3", comm: "sqlite3",
	setup: func(e *env, dir, phase string) error { return nil },
	steps: [][]string{{"/usr/bin/sqlite3", "data.db"}},
	stdin: func(e *env, dir, phase string) string {
		if phase == "B" {
			return "CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, item TEXT, n INT);\n" +
				"BEGIN; INSERT INTO orders(item, n) VALUES ('pen', 3), ('ink', 1); COMMIT;\n" +
				"CREATE INDEX IF NOT EXISTS orders_item ON orders(item);\n" +
				"SELECT item, sum(n) FROM orders GROUP BY item ORDER BY item;\n" +
				"SELECT 'rows', count(*) FROM orders;\n"
		}
		return "CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, v TEXT);\n" +
			"INSERT OR REPLACE INTO t VALUES ('a', '1'), ('b', '2');\n" +
			"SELECT 'rows', count(*) FROM t;\n"
	},
	workload: func(e *env, dir, phase, out string) error {
		if !strings.Contains(out, "rows|") {
			return fmt.Errorf("sqlite3 printed %q", truncate(out))
		}
		return nil
	},
}

var git = program{
	name: "git", comm: "git",
	setup: func(e *env, dir, phase string) error {
		files := map[string]string{"README": "hello\n", "src/main.c": "#include \"main.h\"\nint main(void) { return 0; }\n", "src/main.h": "int main(void);\n"}
		if phase == "B" {
			files = map[string]string{"doc/guide.txt": "guide\n", "lib/util.go": "package lib\n", "Makefile": "all:\n", "notes.md": "# notes\n"}
		}
		return writeFiles(dir, files)
	},
	// git's own commands, as a CI step runs them, each learned on its own.
	steps: [][]string{
		{"/usr/bin/git", "init", "-q", "-b", "main"},
		{"/usr/bin/git", "add", "-A"},
		{"/usr/bin/git", "-c", "user.name=fit", "-c", "user.email=fit@localhost", "commit", "-qm", "one"},
		{"/usr/bin/git", "status", "--short"},
		{"/usr/bin/git", "log", "--oneline"},
	},
	workload: func(e *env, dir, phase, out string) error {
		if !strings.Contains(out, "one") {
			return fmt.Errorf("git printed %q", truncate(out))
		}
		return nil
	},
}

var postgres = program{
	name: "postgresql", comm: "postgres", server: true,
	setup: func(e *env, dir, phase string) error {
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		data := filepath.Join(dir, "data")
		if _, err := os.Stat(data); err == nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Join(dir, "sock"), 0o755); err != nil {
			return err
		}
		for _, d := range []string{data, filepath.Join(dir, "sock")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return err
			}
			if out, err := exec.Command("chown", "postgres:postgres", d).CombinedOutput(); err != nil {
				return fmt.Errorf("chown: %v: %s", err, out)
			}
		}
		cmd := exec.Command("setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
			"/usr/lib/postgresql/15/bin/initdb", "-D", data, "--auth=trust", "-U", "postgres", "--no-sync")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("initdb: %v: %s", err, out)
		}
		return nil
	},
	argv: func(e *env, dir string) []string {
		return []string{"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
			"/usr/lib/postgresql/15/bin/postgres", "-D", "data", "-k", filepath.Join(dir, "sock"), "-p", strconv.Itoa(e.port),
			"-c", "listen_addresses=127.0.0.1", "-c", "logging_collector=off"}
	},
	workload: func(e *env, dir, phase, _ string) error {
		if err := waitPort(e.port, 20*time.Second); err != nil {
			return err
		}
		// The port opens before the server accepts sessions ("the database system is
		// starting up"): wait for a query to work.
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := exec.Command("psql", "-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(e.port), "-U", "postgres", "-d", "postgres", "-c", "SELECT 1").Run()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("postgres never accepted a session: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // polling the server's state
		}
		sqls := []string{"CREATE TABLE IF NOT EXISTS kv(k text primary key, v text)", "INSERT INTO kv VALUES ('a','1') ON CONFLICT DO NOTHING", "SELECT v FROM kv WHERE k='a'"}
		if phase == "B" {
			sqls = []string{"CREATE TABLE IF NOT EXISTS orders(id serial primary key, item text, n int)",
				"INSERT INTO orders(item,n) SELECT 'i'||g, g FROM generate_series(1,2000) g",
				"CREATE INDEX IF NOT EXISTS orders_n ON orders(n)",
				"SELECT item, sum(n) FROM orders GROUP BY item ORDER BY 2 DESC LIMIT 5",
				"VACUUM ANALYZE orders", "SELECT count(*) FROM orders"}
		}
		for _, q := range sqls {
			cmd := exec.CommandContext(context.Background(), "psql", "-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(e.port), "-U", "postgres", "-d", "postgres", "-c", q)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("psql %q: %v: %s", q, err, out)
			}
		}
		return nil
	},
}
