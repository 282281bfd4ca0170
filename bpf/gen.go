// Package bpf holds tailor's kernel programs (tracer.bpf.c), their generated bindings
// and the Go loader that probes the kernel, loads and attaches them and decodes what
// they report.
package bpf

// The objects and bindings are committed; `make generate` rebuilds them byte for byte
// from tracer.bpf.c, the committed include/vmlinux.h and the committed libbpf headers,
// with Debian's clang-14 (see the Makefile).
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target amd64,arm64 -type task_info -type syscall_bits -type file_event -type exec_event -type cap_key -type net_key -type addr_range -type container_key -type watch_policy -type anomaly_key -type anomaly_state -type anomaly_event -type net_event -type sysop -type limits -type access -type task_flag -type event_type -type file_flag -type counter_idx -type net_kind -type range_kind -type sysop_kind -type anomaly_kind tracer tracer.bpf.c -- -I./include
