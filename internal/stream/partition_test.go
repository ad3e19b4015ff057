package stream

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/ferry-mq/ferry/internal/base"
)

// fataler is the part of testing.TB and *rapid.T the helpers use.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// args reads a datadriven directive's key=value arguments.
type args struct {
	t  testing.TB
	kv map[string]string
}

func argsOf(t testing.TB, td *datadriven.TestData) args {
	kv := map[string]string{}
	for _, a := range td.CmdArgs {
		kv[a.Key] = strings.Join(a.Vals, ",")
	}
	return args{t: t, kv: kv}
}

func (a args) has(k string) bool { _, ok := a.kv[k]; return ok }

func (a args) str(k, def string) string {
	if v, ok := a.kv[k]; ok {
		return v
	}
	return def
}

// int reads an integer; a suffix K or M multiplies by 1024 or 1024².
func (a args) int(k string, def int64) int64 {
	v, ok := a.kv[k]
	if !ok {
		return def
	}
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "K"):
		mult, v = 1<<10, strings.TrimSuffix(v, "K")
	case strings.HasSuffix(v, "M"):
		mult, v = 1<<20, strings.TrimSuffix(v, "M")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		a.t.Fatalf("argument %s=%q: %v", k, a.kv[k], err)
	}
	return n * mult
}

func (a args) bool(k string) bool { return a.str(k, "false") == "true" }

// roundTrip sends cmd through its encoding, as the Raft log would.
func roundTrip(t fataler, cmd Command) Command {
	t.Helper()
	b := EncodeCommand(nil, cmd)
	got, err := DecodeCommand(b)
	if err != nil {
		t.Fatalf("decode of encoded %#v: %v", cmd, err)
	}
	if !bytes.Equal(EncodeCommand(nil, got), b) {
		t.Fatalf("re-encoding %#v changed the bytes", got)
	}
	return got
}

// checkSnapshot restores a snapshot and checks that the copy snapshots to
// the same bytes, so every state a test reaches is one a follower can
// install.
func checkSnapshot(t fataler, p *Partition) {
	t.Helper()
	snap := p.Snapshot(nil)
	q, err := RestorePartition(snap)
	if err != nil {
		t.Fatalf("restore of a snapshot: %v", err)
	}
	if again := q.Snapshot(nil); !bytes.Equal(again, snap) {
		t.Fatalf("restored snapshot differs:\n got %x\nwant %x", again, snap)
	}
}

func appendOf(p *Partition, a args) Append {
	return Append{
		Now:             a.int("now", 0),
		Index:           uint64(a.int("index", int64(p.NextIndex()))),
		LastOffsetDelta: int32(a.int("records", 1) - 1),
		MaxTimestamp:    a.int("ts", a.int("now", 0)),
		Bytes:           a.int("bytes", 100),
		ProducerID:      a.int("pid", NoProducerID),
		ProducerEpoch:   int16(a.int("epoch", 0)),
		BaseSequence:    int32(a.int("seq", 0)),
	}
}

func formatAppend(r AppendResult) string {
	switch r.Status {
	case AppendOK:
		if r.BaseOffset < 0 {
			return "ok"
		}
		return fmt.Sprintf("ok offsets=%d-%d", r.BaseOffset, r.LastOffset)
	case AppendDuplicate:
		if r.BaseOffset < 0 {
			return "duplicate of a batch in flight"
		}
		return fmt.Sprintf("duplicate of %d-%d", r.BaseOffset, r.LastOffset)
	default:
		return r.Status.String()
	}
}

func formatPartition(p *Partition) string {
	var b strings.Builder
	off, idx := p.LogStart()
	ts, tsOff := p.MaxTimestamp()
	fmt.Fprintf(&b, "start=%d@%d hwm=%d next-index=%d bytes=%d records=%d chunks=%d max-ts=%d@%d\n",
		off, idx, p.HighWatermark(), p.NextIndex(), p.RetainedBytes(), p.Records(), len(p.chunks), ts, tsOff)
	for _, c := range p.chunks {
		fmt.Fprintf(&b, "  chunk %d@%d bytes=%d records=%d max-ts=%d\n", c.firstOffset, c.firstIndex, c.bytes, c.records, c.maxTimestamp)
	}
	for _, id := range sortedProducerIDs(p) {
		info, _ := p.Producer(id)
		fmt.Fprintf(&b, "producer %d: epoch=%d last-seq=%d last-offset=%d last-ms=%d\n",
			id, info.Epoch, info.LastSequence, info.LastOffset, info.LastMs)
	}
	for _, g := range p.Groups() {
		o, _ := p.CommittedOffset(g)
		gs := p.groups[g]
		state := "standalone"
		if gs.active {
			state = "active"
		} else if gs.emptyMs != 0 {
			state = fmt.Sprintf("empty-since=%d", gs.emptyMs)
		}
		meta := fmt.Sprintf("%q", o.Metadata)
		if len(o.Metadata) > 32 {
			meta = fmt.Sprintf("<%d bytes>", len(o.Metadata))
		}
		fmt.Fprintf(&b, "group %s: offset=%d leader-epoch=%d meta=%s commit-ms=%d %s\n",
			g, o.Offset, o.LeaderEpoch, meta, o.CommitMs, state)
	}
	return b.String()
}

func sortedProducerIDs(p *Partition) []int64 {
	ids := make([]int64, 0, len(p.producers))
	for id := range p.producers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestPartitionDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/partition", func(t *testing.T, path string) {
		var p *Partition
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			a := argsOf(t, td)
			if td.Cmd != "new" && p == nil {
				t.Fatalf("%s: no partition; start with new", td.Pos)
			}
			out := runPartitionCmd(t, &p, td, a)
			if p != nil {
				checkSnapshot(t, p)
			}
			return out
		})
	})
}

func runPartitionCmd(t *testing.T, pp **Partition, td *datadriven.TestData, a args) string {
	cfgOf := func() PartitionConfig {
		return PartitionConfig{RetentionBytes: a.int("retention-bytes", 0), RetentionMs: a.int("retention-ms", 0),
			OffsetsRetentionMs: a.int("offsets-retention-ms", 0), ProducerExpiryMs: a.int("producer-expiry-ms", 0)}
	}
	switch td.Cmd {
	case "new":
		*pp = NewPartition(cfgOf(), uint64(a.int("first-index", 1)))
		return formatPartition(*pp)
	case "configure":
		(*pp).Apply(roundTrip(t, Configure{Config: cfgOf()}))
		return formatPartition(*pp)
	}
	p := *pp
	switch td.Cmd {
	case "append":
		return formatAppend(p.Apply(roundTrip(t, appendOf(p, a))).Append)
	case "check":
		var inflight []Append
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			if line == "" {
				continue
			}
			td2 := datadriven.TestData{}
			fields := strings.Fields(line)
			for _, f := range fields {
				k, v, _ := strings.Cut(f, "=")
				td2.CmdArgs = append(td2.CmdArgs, datadriven.CmdArg{Key: k, Vals: []string{v}})
			}
			inflight = append(inflight, appendOf(p, argsOf(t, &td2)))
		}
		return formatAppend(p.Check(appendOf(p, a), inflight))
	case "tick":
		r := p.Apply(roundTrip(t, RetentionTick{Now: a.int("now", 0)})).Retention
		return fmt.Sprintf("truncate=%v start=%d@%d deleted-bytes=%d expired-producers=%d expired-groups=%v\n%s",
			r.Truncate, r.StartOffset, r.StartIndex, r.DeletedBytes, r.ExpiredProducers, r.ExpiredGroups, formatPartition(p))
	case "commit":
		r := p.Apply(roundTrip(t, CommitOffset{Now: a.int("now", 0), Group: a.str("group", "g"),
			Offset: a.int("offset", 0), LeaderEpoch: int32(a.int("leader-epoch", -1)), Metadata: a.str("meta", "")}))
		if r.Err != nil {
			return "error: " + r.Err.Error()
		}
		return "ok"
	case "commit-long":
		// A commit whose group id or metadata is n bytes long, for limits.
		n := int(a.int("n", 0))
		c := CommitOffset{Now: a.int("now", 0), Group: "g", Offset: 1}
		if a.str("field", "") == "group" {
			c.Group = strings.Repeat("g", n)
		} else {
			c.Metadata = strings.Repeat("m", n)
		}
		if r := p.Apply(c); r.Err != nil {
			return "error: " + r.Err.Error()
		}
		return "ok"
	case "delete-offsets":
		return fmt.Sprintf("existed=%v", p.Apply(roundTrip(t, DeleteOffsets{Group: a.str("group", "g")})).Existed)
	case "mark":
		p.Apply(roundTrip(t, MarkGroup{Now: a.int("now", 0), Group: a.str("group", "g"), Empty: a.bool("empty")}))
		return formatPartition(p)
	case "state":
		return formatPartition(p)
	case "seek":
		off, ok := p.SeekTimestamp(a.int("ts", 0))
		return fmt.Sprintf("offset=%d found=%v", off, ok)
	}
	t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	return ""
}

// TestOlderSnapshotsRestore: snapshots as earlier versions wrote them
// restore. Version 1 had no data end, and restores it at the high
// watermark, the most a consumer could be told; versions 1 and 2 had no
// record counts, and restore each chunk's as the data offsets it spans.
// Batches appended after the restore are counted exactly.
func TestOlderSnapshotsRestore(t *testing.T) {
	// The partition: 5 records (offsets 0-4) filling a chunk, a control
	// batch (5), 3 records (6-8) and a control batch (9).
	p := NewPartition(PartitionConfig{}, 1)
	p.Apply(Append{Index: 1, LastOffsetDelta: 4, Bytes: base.StreamRetentionChunkBytes, ProducerID: NoProducerID})
	p.Apply(Append{Index: 2, Bytes: 50, ProducerID: NoProducerID, Control: true})
	p.Apply(Append{Index: 3, LastOffsetDelta: 2, Bytes: 100, ProducerID: NoProducerID})
	p.Apply(Append{Index: 4, Bytes: 50, ProducerID: NoProducerID, Control: true})
	for _, tc := range []struct {
		version string
		snap    []byte
		dataEnd int64
		records int64
	}{
		{"1", unhex(t, partitionSnapshotV1), 10, 5 + 5},
		{"2", unhex(t, partitionSnapshotV2), 9, 5 + 4},
		{"current", p.Snapshot(nil), 9, 5 + 3},
	} {
		q, err := RestorePartition(tc.snap)
		if err != nil {
			t.Fatalf("restore of version %s: %v", tc.version, err)
		}
		if q.DataEnd() != tc.dataEnd || q.HighWatermark() != 10 || q.Records() != tc.records {
			t.Errorf("version %s: data end %d, high watermark %d, records %d, want %d, 10 and %d",
				tc.version, q.DataEnd(), q.HighWatermark(), q.Records(), tc.dataEnd, tc.records)
		}
		q.Apply(Append{Index: 5, LastOffsetDelta: 1, Bytes: 100, ProducerID: NoProducerID})
		if q.DataEnd() != 12 || q.Records() != tc.records+2 {
			t.Errorf("version %s, after a data batch: data end %d, records %d, want 12 and %d",
				tc.version, q.DataEnd(), q.Records(), tc.records+2)
		}
	}
}

// The partition of TestOlderSnapshotsRestore as the encoders of versions
// 1 and 2 wrote it (at 85a1f7d).
const (
	partitionSnapshotV1 = "01000000000514010000000201008080800800020a9003000000"
	partitionSnapshotV2 = "0200000000051412010000000201008080800800020a9003000000"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
