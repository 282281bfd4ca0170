# tailor: learn what a target does, generate minimal profiles, enforce them.
# `make help` lists the targets.

GO        ?= go
CLANG     ?= clang-14
STRIP     ?= llvm-strip-14
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/tailor-sec/tailor/internal/version.Version=$(VERSION)
BIN       := bin/tailor
# Debian packages the build, the tests and the examples need.
DEB_PKGS  := clang-14 llvm-14 libbpf-dev bpftool libseccomp-dev pkg-config gcc gcc-multilib \
             make git strace apparmor docker.io containerd runc busybox-static iproute2 util-linux \
             nginx redis-server redis-tools wrk curl chromium docker-registry postgresql sqlite3 python3 docker-compose

export CGO_ENABLED=1

.PHONY: help setup build test fuzz test-unit bench fit generate check-generate vmlinux lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

setup: ## install Debian packages and Go modules (run as root on a fresh Debian machine)
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEB_PKGS) && \
	for pidfile in /run/nginx.pid /run/redis/redis-server.pid; do \
		if [ -f $$pidfile ]; then $$SUDO kill $$(cat $$pidfile); fi; \
	done # the examples and the bench start their own nginx and redis on loopback ports
	@# Debian's docker-registry service listens on :5000 (every address); the tests start
	@# their own registry on 127.0.0.1.
	-@if command -v systemctl >/dev/null && systemctl is-active -q docker-registry 2>/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; $$SUDO systemctl disable --now docker-registry; fi
	$(GO) mod download
	$(GO) build ./...

build: ## build bin/tailor
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tailor

test: build ## run every test; privileged ones need root (with CI=true a missing privilege fails), then the fuzz tests
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz

FUZZTIME ?= 10s
fuzz: ## fuzz recording and bundle decoding for FUZZTIME each (default 10s), seeded from testdata
	$(GO) test ./profiles -run '^$$' -fuzz '^FuzzDecodeRecording$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s
	$(GO) test ./profiles -run '^$$' -fuzz '^FuzzLoadBundle$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s

test-unit: ## run only the tests that need no privilege
	TAILOR_UNPRIVILEGED=1 $(GO) test -count=1 ./...

bench: build ## measure the cost (root): getpid per config, nginx/redis untraced vs learned, open flood, tailor RSS/CPU, profile sizes; chart in docs/
	$(GO) run ./bench

fit: build ## fit benchmark (root): real programs learned, replayed, used otherwise and attacked under their profiles; writes docs/fit.md and docs/fit.svg
	$(GO) run ./fit -tailor $(BIN)

generate: ## regenerate the BPF objects and bindings from bpf/*.bpf.c and the committed vmlinux.h
	cd bpf && BPF2GO_CC=$(CLANG) BPF2GO_STRIP=$(STRIP) $(GO) generate ./...

check-generate: generate ## fail if `make generate` changes any committed file
	@git diff --exit-code --stat -- bpf || { echo "bpf/: generated files differ from the committed ones: run 'make generate' and commit"; exit 1; }

vmlinux: ## regenerate bpf/include/vmlinux.h from this machine's kernel BTF (x86_64)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/include/vmlinux.h

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean: ## remove build output
	rm -rf bin
