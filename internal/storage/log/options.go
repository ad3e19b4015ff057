package log

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// Durability says when Append returns.
type Durability uint8

const (
	// DurabilitySync: Append returns once the batch is fsynced. Concurrent
	// appenders share one write and one fsync.
	DurabilitySync Durability = iota
	// DurabilityInterval: Append returns once the batch is written to the
	// file; an fsync runs every SyncInterval. A crash (power loss) can lose
	// batches confirmed within the last interval.
	DurabilityInterval
	// DurabilityNone: Append returns once the batch is written; nothing on
	// the append path fsyncs. A power loss can lose any batch not yet in a
	// rolled segment. Segment rolls, checkpoints, Close, Sync and SyncAll
	// still fsync, which keeps the recovery rules the same for every mode.
	DurabilityNone
)

func (d Durability) String() string {
	switch d {
	case DurabilitySync:
		return "sync"
	case DurabilityInterval:
		return "interval"
	case DurabilityNone:
		return "none"
	}
	return fmt.Sprintf("durability(%d)", uint8(d))
}

// Options configure a Log. Zero values take the defaults named in base.
type Options struct {
	FS    vfs.FS     // default vfs.Default
	Dir   string     // required; created if missing
	Clock base.Clock // default base.RealClock

	SegmentBytes       int64         // roll size; default base.SegmentBytesDefault, within [SegmentBytesMin, SegmentBytesMax]
	SegmentAge         time.Duration // roll age; default base.SegmentAgeDefault
	IndexIntervalBytes int           // bytes between index entries; default base.IndexIntervalBytes

	// SegmentBytesGrowTo, when larger than SegmentBytes, lets the roll
	// size double for every base.SegmentGrowthEvery segments the log
	// holds, up to it: a log cut often at its start (a queue's) keeps
	// small segments while it is short and few files while it is long.
	// At most SegmentBytesMax.
	SegmentBytesGrowTo int64

	Durability   Durability
	SyncInterval time.Duration // DurabilityInterval's period; default base.SyncIntervalDefault

	// CheckpointInterval is the longest the recovery point may lag behind
	// a sync; default base.CheckpointIntervalDefault.
	CheckpointInterval time.Duration

	RetentionBytes int64         // <= 0: unlimited
	RetentionAge   time.Duration // 0: unlimited

	// FirstIndex is the Index of the first batch of a fresh log (default
	// 1). An existing log keeps its own.
	FirstIndex uint64

	// RemoveInBackground removes the files of segments that truncation
	// and retention drop in a goroutine, instead of before the call
	// returns: on ext4 unlinking a segment costs about 0.2 ms per MiB of
	// it (its cached pages go), 180 ms for a full 1 GiB one, which the
	// engine loop would wait out. The start has moved durably either way;
	// files a crash leaves behind are removed at the next Open.
	RemoveInBackground bool

	Logger *slog.Logger // default: discard
}

// maxTerm is the largest term the log stores: the term goes in the batch's
// int32 partitionLeaderEpoch.
const maxTerm = math.MaxInt32

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, base.Errorf(base.CodeInvalidArgument, "log: Options.Dir is required")
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Clock == nil {
		o.Clock = base.RealClock{}
	}
	var err error
	if o.SegmentBytes, o.SegmentAge, err = rolling(o.SegmentBytes, o.SegmentAge); err != nil {
		return o, err
	}
	if o.SegmentBytesGrowTo < 0 || o.SegmentBytesGrowTo > base.SegmentBytesMax {
		return o, base.Errorf(base.CodeInvalidArgument, "log: SegmentBytesGrowTo %d outside [0, %d]", o.SegmentBytesGrowTo, int64(base.SegmentBytesMax))
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = base.IndexIntervalBytes
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = base.SyncIntervalDefault
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = base.CheckpointIntervalDefault
	}
	if o.IndexIntervalBytes < 0 || o.SyncInterval < 0 || o.CheckpointInterval < 0 || o.RetentionAge < 0 {
		return o, base.Errorf(base.CodeInvalidArgument, "log: negative duration or interval in options")
	}
	if o.Durability > DurabilityNone {
		return o, base.Errorf(base.CodeInvalidArgument, "log: unknown durability %d", o.Durability)
	}
	if o.FirstIndex == 0 {
		o.FirstIndex = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// rolling checks a segment roll size and age (Options.SegmentBytes and
// SegmentAge) and fills in their defaults.
func rolling(bytes int64, age time.Duration) (int64, time.Duration, error) {
	if bytes == 0 {
		bytes = base.SegmentBytesDefault
	}
	if bytes < base.SegmentBytesMin || bytes > base.SegmentBytesMax {
		return 0, 0, base.Errorf(base.CodeInvalidArgument, "log: SegmentBytes %d outside [%d, %d]", bytes, base.SegmentBytesMin, int64(base.SegmentBytesMax))
	}
	if age == 0 {
		age = base.SegmentAgeDefault
	}
	if age < 0 {
		return 0, 0, base.Errorf(base.CodeInvalidArgument, "log: negative SegmentAge %v", age)
	}
	return bytes, age, nil
}
