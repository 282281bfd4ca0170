package profiles

import "slices"

// Merge combines recordings of the same target (several learn runs, several
// workloads) into one that allows what any of them saw: every list is the union, the
// loss counters are added, and the result is Complete only if every input was. The
// target, host and times of the first recording are kept; Start and End span all of
// them. Merge returns nil for no recordings and never changes its inputs.
func Merge(recs ...*Recording) *Recording {
	if len(recs) == 0 {
		return nil
	}
	out := &Recording{
		Kind:          RecordingKind,
		SchemaVersion: RecordingSchemaVersion,
		Tailor:        recs[0].Tailor,
		Target:        recs[0].Target,
		Host:          recs[0].Host,
		Start:         recs[0].Start,
		End:           recs[0].End,
		Complete:      true,
	}
	for _, r := range recs {
		if r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		out.Complete = out.Complete && r.Complete
		out.Incomplete = append(out.Incomplete, r.Incomplete...)
		out.Missing = append(out.Missing, r.Missing...)
		out.Host.Probes = append(slices.Clone(out.Host.Probes), r.Host.Probes...)
		if r.Host.CPUs > 0 && (out.Host.CPUs == 0 || r.Host.CPUs < out.Host.CPUs) {
			out.Host.CPUs = r.Host.CPUs // the smallest learning host bounds them all
		}
		out.Loss.RingbufDrops += r.Loss.RingbufDrops
		out.Loss.MapFull += r.Loss.MapFull
		out.Loss.TooLong += r.Loss.TooLong
		out.Loss.Decode += r.Loss.Decode
		for _, s := range r.Syscalls {
			out.Syscalls = append(out.Syscalls, ArchSyscalls{Arch: s.Arch, Names: slices.Clone(s.Names), Unknown: slices.Clone(s.Unknown)})
		}
		out.Execs = append(out.Execs, r.Execs...)
		for _, f := range r.Files {
			out.Files = append(out.Files, FileAccess{Path: f.Path, Access: slices.Clone(f.Access), Dir: f.Dir})
		}
		for _, c := range r.Capabilities {
			c.Callers = slices.Clone(c.Callers)
			out.Capabilities = append(out.Capabilities, c)
		}
		out.Network.Sockets = append(out.Network.Sockets, r.Network.Sockets...)
		out.Network.Binds = append(out.Network.Binds, r.Network.Binds...)
		out.Network.Listens = append(out.Network.Listens, r.Network.Listens...)
		out.Network.Connects = append(out.Network.Connects, r.Network.Connects...)
		out.Network.Sends = append(out.Network.Sends, r.Network.Sends...)
		out.Network.Accepts = append(out.Network.Accepts, r.Network.Accepts...)
		out.Network.Failed = append(out.Network.Failed, r.Network.Failed...)
		for _, f := range r.Failed {
			out.Failed = append(out.Failed, FailedAccess{Path: f.Path, Access: slices.Clone(f.Access), Errno: f.Errno})
		}
	}
	out.Observed = mergeObserved(recs)
	// A merged recording of complete runs that lost something is still incomplete.
	if out.Loss.Total() > 0 {
		out.Complete = false
	}
	out.Normalize()
	return out
}
