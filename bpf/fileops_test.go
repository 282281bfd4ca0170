package bpf

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// fileOp is one path operation as the tests compare them.
type fileOp struct {
	access      uint32
	path, path2 string
	err         int32
}

func TestTracerSeesPathOperations(t *testing.T) {
	tr := openTracer(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/prog", []byte("#!/bin/sh\ntrue\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A file that exists while learning but may not next time (a stale pid file).
	if err := os.WriteFile(dir+"/stale.pid", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Relative paths throughout: the kernel must join them to the working directory.
	script := "cd " + dir + " && mkdir d && : > d/f && mv d/f d/g && ln d/g d/h && ln -s g d/s && " +
		"chmod 600 d/g && mkfifo d/p && rm d/h d/s d/p && rm d/g && rmdir d && ./prog && " +
		"(cat missing 2>/dev/null; true) && echo 1 > stale.pid"
	target := runTraced(t, tr, "/bin/sh", "-c", script)
	tr.Flush()

	ops := map[fileOp]bool{}
	var execs []string
	drain(tr, func(ev Event) {
		switch e := ev.(type) {
		case *FileEvent:
			if e.Target == target {
				ops[fileOp{e.Access, e.Path, e.Path2, e.Err}] = true
			}
		case *ExecEvent:
			execs = append(execs, e.Filename)
		}
	})
	d := dir + "/d"
	for _, want := range []fileOp{
		{AccMkdir, d, "", 0},
		{AccWrite | AccCreate, d + "/f", "", 0},
		{AccRename, d + "/f", d + "/g", 0},
		{AccLink, d + "/g", d + "/h", 0},
		{AccSymlink, d + "/s", "", 0},
		{AccSetattr, d + "/g", "", 0},
		{AccMknod, d + "/p", "", 0},
		{AccDelete, d + "/h", "", 0},
		{AccDelete, d + "/s", "", 0},
		{AccDelete, d + "/p", "", 0},
		{AccDelete, d + "/g", "", 0},
		{AccRmdir, d, "", 0},
		{AccRead, dir + "/missing", "", -int32(syscall.ENOENT)},
		{AccWrite | AccCreate, dir + "/stale.pid", "", 0},
	} {
		if !ops[want] {
			t.Errorf("missing %+v\ngot %+v", want, ops)
		}
	}
	found := false
	for _, e := range execs {
		found = found || e == dir+"/prog"
	}
	if !found {
		t.Errorf("exec of ./prog not recorded as %s/prog: %v", dir, execs)
	}
	c, err := tr.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.RingbufDrops+c.ArgsUnreadable+c.DecodeErrors+c.ChannelDrops != 0 {
		t.Errorf("losses: %+v", c)
	}
}

func TestTracerSeesPeers(t *testing.T) {
	tr := openTracer(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// A port nothing listens on: the connect fails with ECONNREFUSED.
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	script := "exec 3<>/dev/tcp/127.0.0.1/" + strconv.Itoa(port) + "; exec 3>&-; " +
		"(exec 4<>/dev/tcp/127.0.0.1/" + strconv.Itoa(refused) + ") 2>/dev/null; true"
	target := runTraced(t, tr, "/bin/bash", "-c", script)
	tr.Flush()

	var events []NetUse
	drain(tr, func(ev Event) {
		if e, ok := ev.(*NetEvent); ok && e.Target == target {
			events = append(events, e.Use)
		}
	})
	lo := netip.MustParseAddr("127.0.0.1")
	want := []NetUse{
		{Kind: NetConnect, Family: syscall.AF_INET, Type: syscall.SOCK_STREAM, Protocol: syscall.IPPROTO_TCP, Port: port, Addr: lo, Count: 1},
		{Kind: NetConnect, Family: syscall.AF_INET, Type: syscall.SOCK_STREAM, Protocol: syscall.IPPROTO_TCP, Port: refused, Addr: lo,
			Err: -int32(syscall.ECONNREFUSED), Count: 1},
	}
	uses := tr.Network(target)
	for _, w := range want {
		inMap, inEvents := false, false
		for _, u := range uses {
			inMap = inMap || u == w
		}
		for _, u := range events {
			inEvents = inEvents || u == w
		}
		if !inMap || !inEvents {
			t.Errorf("connect %+v: in map %v, as event %v\nmap %+v\nevents %+v", w, inMap, inEvents, uses, events)
		}
	}
}
