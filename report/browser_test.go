package report

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/tailor-sec/tailor/profiles"
)

// browserOwnHosts are the hosts Chromium itself asks for in the background (component
// updates, sign-in), with or without a page: --disable-background-networking does not
// stop them. They reach only the test's proxy; what a page asks for is told apart by
// the page's own network events.
var browserOwnHosts = []string{".google.com", ".googleapis.com", ".gvt1.com"}

// TestBrowser renders the reports of the nginx and redis bundles, of a diff of two
// recordings and of an anomalies file, opens each in headless Chromium with scripts
// disabled, checks its key facts in the DOM, takes a full-page screenshot, and checks
// that the page asked for nothing but itself. Every request Chromium makes goes to a
// proxy on 127.0.0.1 that answers none, and no name resolves: a control page that
// does load a remote image shows both the page's network events and the proxy see it.
// TAILOR_REPORT_SCREENSHOTS=DIR keeps the screenshots (docs/report-*.png).
func TestBrowser(t *testing.T) {
	chromium := findChromium(t)
	dir := t.TempDir()
	proxy := startProxy(t)

	// The pages.
	nginx := writeBundle(t, nginxRecording, dir)
	redis := writeBundle(t, redisRecording, dir)
	pages := map[string]string{}
	render := func(name string, inputs ...string) {
		r, err := Build(inputs)
		if err != nil {
			t.Fatal(err)
		}
		page, err := r.HTML(inputs, "test")
		if err != nil {
			t.Fatal(err)
		}
		if refs := externalRefs(t, page); len(refs) > 0 {
			t.Errorf("%s refers to other hosts: %v", name, refs)
		}
		pages[name] = filepath.Join(dir, name+".html")
		if err := os.WriteFile(pages[name], page, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	render("bundle-nginx", nginx)
	render("bundle-redis", redis)
	render("diff", oldNginx, nginxRecording)
	render("anomalies", anomaliesFile)
	render("anomalies-categorised", categorised)
	control := filepath.Join(dir, "control.html")
	const controlHost = "report-control.invalid"
	os.WriteFile(control, []byte(`<!DOCTYPE html><html><body><p>control</p><img src="http://`+controlHost+`/pixel.png"></body></html>`), 0o600)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.WindowSize(1280, 900),
		chromedp.ProxyServer("http://"+proxy.addr),
		chromedp.Flag("proxy-bypass-list", "<-loopback>"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
	)...)
	defer cancel()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	t.Logf("chromium started in %v", time.Since(start))

	open := func(path string) (*html.Node, []string) {
		t.Helper()
		start := time.Now()
		defer func() { t.Logf("%s: %v", filepath.Base(path), time.Since(start)) }()
		var mu sync.Mutex
		var requests []string
		tab, cancel := chromedp.NewContext(ctx, chromedp.WithListener(func(ev any) {
			if e, ok := ev.(*network.EventRequestWillBeSent); ok {
				mu.Lock()
				requests = append(requests, e.Request.URL)
				mu.Unlock()
			}
		}))
		defer cancel()
		if err := chromedp.Do(tab); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(tab, chromedp.Navigate("file://"+path)); err != nil {
			t.Fatalf("opening %s: %v", path, err)
		}
		dom, err := chromedp.Run(tab, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatal(err)
		}
		shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if path != control {
			checkScreenshot(t, filepath.Base(path), shot)
		}
		doc, err := html.Parse(strings.NewReader(dom))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return doc, slices.Clone(requests)
	}

	// The control first: it proves the two detectors see a request a page makes.
	_, reqs := open(control)
	if !slices.ContainsFunc(reqs, func(u string) bool { return strings.Contains(u, controlHost) }) {
		t.Fatalf("the control page's image request was not seen among its requests %v", reqs)
	}
	if err := proxy.waitFor(controlHost, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	for _, name := range sortedKeys(pages) {
		doc, reqs := open(pages[name])
		if want := []string{"file://" + pages[name]}; !slices.Equal(reqs, want) {
			t.Errorf("%s: the page made requests %v, want only itself", name, reqs)
		}
		switch name {
		case "bundle-nginx":
			checkBundleDOM(t, doc, nginx, "/usr/sbin/nginx", "exec")
		case "bundle-redis":
			checkBundleDOM(t, doc, redis, "/usr/bin/redis-server", "exec")
		case "diff":
			checkDiffDOM(t, doc)
		case "anomalies":
			checkAnomaliesDOM(t, doc, anomaliesFile, false)
		case "anomalies-categorised":
			checkAnomaliesDOM(t, doc, categorised, true)
		}
	}
	for _, h := range proxy.hosts() {
		if h != controlHost && !slices.ContainsFunc(browserOwnHosts, func(s string) bool { return strings.HasSuffix(h, s) }) {
			t.Errorf("a request for %s reached the proxy", h)
		}
	}
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (Debian package chromium, in the Makefile's DEB_PKGS)")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

func checkBundleDOM(t *testing.T, doc *html.Node, dir, rule, access string) {
	t.Helper()
	b, err := profiles.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(dir)
	if got, want := text(find(doc, "data-fact", "syscalls-x86_64")), strconv.Itoa(len(b.Syscalls[0].Names)); got != want {
		t.Errorf("%s: page shows %s syscalls, bundle allows %s", name, got, want)
	}
	if got, want := text(find(doc, "data-fact", "capabilities")), strconv.Itoa(len(b.Capabilities)); got != want {
		t.Errorf("%s: page shows %s capabilities, bundle adds %s", name, got, want)
	}
	if got, want := text(find(doc, "data-fact", "file-rules")), strconv.Itoa(len(b.Files)); got != want {
		t.Errorf("%s: page shows %s file rules, bundle has %s", name, got, want)
	}
	if c := find(doc, "id", "completeness"); attr(c, "data-complete") != "true" || !strings.Contains(attr(c, "class"), "ok") {
		t.Errorf("%s: completeness %q", name, text(c))
	}
	if r := find(doc, "data-rule", rule); r == nil || !strings.Contains(text(r), access) {
		t.Errorf("%s: rule %s with %s not in the file tree", name, rule, access)
	}
	if len(findAll(doc, "class", "chip nodocker")) == 0 && len(findAll(doc, "class", "chip gen")) == 0 {
		t.Errorf("%s: no syscall marked", name)
	}
	for _, c := range b.Capabilities {
		if row := find(doc, "data-cap", c); !strings.Contains(text(row), "added") {
			t.Errorf("%s: capability %s not shown added: %q", name, c, text(row))
		}
	}
	// Every widened rule is marked in the tree.
	for _, p := range b.Landlock.Paths {
		for _, w := range p.Widened {
			r := find(doc, "data-rule", w.Rule)
			if r == nil || !strings.Contains(text(r), "widened") {
				t.Errorf("%s: widened rule %s not marked", name, w.Rule)
			}
		}
	}
	if len(findAll(doc, "", "details")) == 0 {
		t.Errorf("%s: no collapsible directory in the file tree", name)
	}
}

func checkDiffDOM(t *testing.T, doc *html.Node) {
	t.Helper()
	older, _ := profiles.LoadPolicy(oldNginx)
	newer, _ := profiles.LoadPolicy(nginxRecording)
	d := profiles.Diff(older, newer)
	added := 0
	for _, s := range d.Added.Syscalls {
		added += len(s.Names)
	}
	added += len(d.Added.Execs) + len(d.Added.Files) + len(d.Added.Capabilities) + len(d.Added.SocketFamilies) + len(d.Added.Network) + len(d.Added.Problems)
	if v := find(doc, "id", "verdict"); attr(v, "data-verdict") != "fail" || !strings.Contains(text(v), "FAIL") {
		t.Errorf("diff verdict %q", text(v))
	}
	if got := text(find(doc, "id", "diff-added")); got != strconv.Itoa(added) || added == 0 {
		t.Errorf("diff shows %s added, tailor diff finds %d", got, added)
	}
	// nginx-local connects (its workload's curl probes) where the old recording did
	// not, and webserver.json needed CAP_NET_BIND_SERVICE for port 80.
	var plus, minus []string
	for _, n := range findAll(doc, "data-sign", "+") {
		plus = append(plus, text(n))
	}
	for _, n := range findAll(doc, "data-sign", "-") {
		minus = append(minus, text(n))
	}
	if !slices.ContainsFunc(plus, func(s string) bool { return strings.HasPrefix(s, "+ x86_64 connect") }) ||
		!slices.Contains(minus, "- CAP_NET_BIND_SERVICE") || len(plus) != added {
		t.Errorf("diff lines: %d added %v, removed %v", added, plus, minus)
	}
}

func checkAnomaliesDOM(t *testing.T, doc *html.Node, file string, categorised bool) {
	t.Helper()
	data, _ := os.ReadFile(file)
	lines := strings.Count(string(data), "\n") - strings.Count(string(data), `"kind":"summary"`)
	dots := 0
	for _, d := range findAll(doc, "class", "dot") {
		n, _ := strconv.Atoi(attr(d, "data-lines"))
		dots += n
	}
	if dots != lines {
		t.Errorf("timeline's dots stand for %d lines, the file has %d anomaly lines", dots, lines)
	}
	v := find(doc, "id", "anomaly-verdict")
	if total := attr(v, "data-total"); total == "" || total == "0" || total != text(find(doc, "data-fact", "anomalies-total")) {
		t.Errorf("anomaly total %q / %q", total, text(find(doc, "data-fact", "anomalies-total")))
	}
	hasCats := find(doc, "data-counts", "category") != nil && find(doc, "data-counts", "severity") != nil
	if hasCats != categorised {
		t.Errorf("category and severity tables shown: %v, want %v", hasCats, categorised)
	}
	if !categorised {
		if row := find(doc, "data-name", "/usr/bin/uname is not among the programs the profile runs"); !strings.HasSuffix(text(row), "6") {
			t.Errorf("top rules: uname's exec rule row %q, want 6 occurrences", text(row))
		}
		return
	}
	// One row per category of docs/anomalies.md, each seen once.
	cats := find(doc, "data-counts", "category")
	for _, cat := range []string{"shell-spawned", "unexpected-program", "sensitive-file-read", "system-dir-write", "file-outside-profile",
		"unexpected-outbound-connection", "unexpected-inbound-connection", "privilege-change", "namespace-or-mount-change",
		"process-injection", "kernel-tampering", "raw-network-socket", "unexpected-socket-family", "syscall-outside-profile"} {
		if find(cats, "data-name", cat) == nil {
			t.Errorf("no row for category %s", cat)
		}
	}
	if text(find(doc, "data-fact", "anomalies-suppressed")) != "0" || text(find(doc, "data-fact", "anomalies-lost")) != "0" ||
		find(doc, "id", "anomaly-loss") != nil {
		t.Error("suppressed or lost shown for a run that had none")
	}
}

// checkScreenshot decodes a screenshot, checks it is a whole page and not blank, and
// keeps it where TAILOR_REPORT_SCREENSHOTS says.
func checkScreenshot(t *testing.T, name string, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	bounds := img.Bounds()
	colours := map[uint32]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 7 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if bounds.Dx() < 1000 || len(colours) < 8 {
		t.Errorf("%s: screenshot %v with %d colours looks blank", name, bounds, len(colours))
	}
	if keep := os.Getenv("TAILOR_REPORT_SCREENSHOTS"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, strings.TrimSuffix(name, ".html")+".png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// externalRefs lists what in a page could make a browser ask another host for
// something: an element that loads or navigates, a URL-valued attribute holding
// an absolute or scheme-relative URL, a CSS url() or @import that is not data:, a
// meta refresh. A missing Content-Security-Policy that forbids loading counts too.
func externalRefs(t *testing.T, page []byte) []string {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	csp := false
	urlAttrs := []string{"src", "href", "srcset", "action", "formaction", "poster", "data", "background", "ping",
		"manifest", "cite", "longdesc", "codebase", "icon", "usemap"}
	checkCSS := func(css string) {
		low := strings.ToLower(css)
		for i := strings.Index(low, "url("); i >= 0; i = strings.Index(low, "url(") {
			rest := strings.TrimLeft(low[i+4:], ` "'`)
			if !strings.HasPrefix(rest, "data:") && !strings.HasPrefix(rest, "#") {
				refs = append(refs, "css "+css[i:min(len(css), i+60)])
			}
			low, css = low[i+4:], css[i+4:]
		}
		if strings.Contains(low, "@import") {
			refs = append(refs, "css @import")
		}
	}
	var visit func(*html.Node)
	visit = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "iframe", "frame", "object", "embed", "base", "img", "video", "audio", "source", "track", "form", "a", "image", "use", "foreignobject":
				refs = append(refs, "element <"+n.Data+">")
			case "style":
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					checkCSS(c.Data)
				}
			case "meta":
				if strings.EqualFold(attr(n, "http-equiv"), "refresh") {
					refs = append(refs, "meta refresh")
				}
				if strings.EqualFold(attr(n, "http-equiv"), "content-security-policy") && strings.Contains(attr(n, "content"), "default-src 'none'") {
					csp = true
				}
			}
			for _, a := range n.Attr {
				key := strings.ToLower(strings.TrimPrefix(a.Key, "xlink:"))
				v := strings.TrimSpace(a.Val)
				switch {
				case a.Key == "style":
					checkCSS(v)
				case slices.Contains(urlAttrs, key) || strings.HasPrefix(key, "on"):
					refs = append(refs, fmt.Sprintf("<%s %s=%q>", n.Data, a.Key, v))
				case a.Key != "xmlns" && (strings.HasPrefix(v, "//") || isURL(v)):
					refs = append(refs, fmt.Sprintf("<%s %s=%q>", n.Data, a.Key, v))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c)
		}
	}
	visit(doc)
	if !csp {
		refs = append(refs, "no Content-Security-Policy default-src 'none'")
	}
	return refs
}

func isURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && u.Scheme != "" && u.Host != ""
}

// find returns the first element whose attribute key has value val (key "" matches
// the element name), nil when none does.
func find(n *html.Node, key, val string) *html.Node {
	all := findAll(n, key, val)
	if len(all) == 0 {
		return nil
	}
	return all[0]
}

func findAll(n *html.Node, key, val string) []*html.Node {
	var out []*html.Node
	var visit func(*html.Node)
	visit = func(n *html.Node) {
		if n.Type == html.ElementNode && (key == "" && n.Data == val || key != "" && attr(n, key) == val) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c)
		}
	}
	visit(n)
	return out
}

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is the element's text, spaces collapsed.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var visit func(*html.Node)
	visit = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			visit(c)
		}
	}
	visit(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// proxy is an HTTP proxy on 127.0.0.1 that records the host of every request and
// answers none (it closes the connection).
type proxy struct {
	addr string
	mu   sync.Mutex
	seen []string
	cond *sync.Cond
}

func startProxy(t *testing.T) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &proxy{addr: l.Addr().String()}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				// "CONNECT host:443 HTTP/1.1" or "GET http://host/path HTTP/1.1"
				f := strings.Fields(line)
				host := "?"
				if len(f) >= 2 {
					host = f[1]
					if u, err := url.Parse(f[1]); err == nil && u.Host != "" {
						host = u.Host
					}
					if h, _, err := net.SplitHostPort(host); err == nil {
						host = h
					}
				}
				p.mu.Lock()
				p.seen = append(p.seen, host)
				p.cond.Broadcast()
				p.mu.Unlock()
			}()
		}
	}()
	return p
}

func (p *proxy) hosts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

// waitFor waits until a request for host reached the proxy.
func (p *proxy) waitFor(host string, timeout time.Duration) error {
	timer := time.AfterFunc(timeout, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	for !slices.Contains(p.seen, host) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the proxy saw no request for %s (it saw %v)", host, p.seen)
		}
		p.cond.Wait()
	}
	return nil
}
