// Package interrupt catches SIGINT and SIGTERM from tailor's first instant. Until a
// command claims them (it has started something a signal must stop cleanly: a
// tracer, a target, a container copy), a signal ends tailor at once with exit 130 and
// one line, instead of the Go runtime's silent death by signal.
package interrupt

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

var (
	mu      sync.Mutex
	claimed bool
)

// Catch starts catching; call it first in main.
func Catch() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for sig := range ch {
			mu.Lock()
			if !claimed {
				fmt.Fprintf(os.Stderr, "tailor: interrupted (%v) before anything started\n", sig)
				os.Exit(130)
			}
			mu.Unlock()
		}
	}()
}

// Claim says the caller now handles SIGINT and SIGTERM itself (it called
// signal.Notify first): Catch's handler then lets them be.
func Claim() {
	mu.Lock()
	claimed = true
	mu.Unlock()
}

// Context is parent cancelled by SIGINT or SIGTERM, with the signals claimed: the
// command that asks for it stops cleanly on them. Call stop when the command ends.
func Context(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	ctx, stop = signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	Claim()
	return ctx, stop
}
