package meta

import (
	"bytes"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ferry-mq/ferry/internal/base"
)

// Batch is a set of writes that Commit applies atomically: after a crash
// either all of a committed batch is there or none of it. A Batch is not
// safe for concurrent use. It is spent by Commit or Close; using it
// afterwards is a bug.
type Batch struct {
	s     *Store
	pb    *pebble.Batch // nil once spent
	bytes int           // keys and values added, bounded by base.MetaBatchBytesMax
}

// NewBatch returns an empty batch for s. Commit it, or Close it to discard
// it.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, pb: s.db.NewBatch()}
}

func (b *Batch) live() {
	base.Assert(b.pb != nil, "meta: batch used after Commit or Close")
}

// reserve accounts n more bytes, failing with CodeTooLarge past the limit.
func (b *Batch) reserve(n int) error {
	if b.bytes+n > base.MetaBatchBytesMax {
		return base.Errorf(base.CodeTooLarge, "meta: batch would hold %d bytes, over the limit of %d", b.bytes+n, base.MetaBatchBytesMax)
	}
	b.bytes += n
	return nil
}

// Set sets key to value (both copied). Errors, which leave the batch as it
// was: CodeInvalidArgument for an empty key, CodeTooLarge for a key over
// base.MetaKeyBytesMax, a value over base.MetaValueBytesMax, or a batch that
// would exceed base.MetaBatchBytesMax.
func (b *Batch) Set(key, value []byte) error {
	b.live()
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > base.MetaValueBytesMax {
		return base.Errorf(base.CodeTooLarge, "meta: value of %d bytes for key %q, over the limit of %d", len(value), key, base.MetaValueBytesMax)
	}
	if err := b.reserve(len(key) + len(value)); err != nil {
		return err
	}
	return b.pb.Set(key, value, nil)
}

// Delete removes key, if present. Errors are those of Set.
func (b *Batch) Delete(key []byte) error {
	b.live()
	if err := checkKey(key); err != nil {
		return err
	}
	if err := b.reserve(len(key)); err != nil {
		return err
	}
	return b.pb.Delete(key, nil)
}

// DeleteRange removes every key in [start, end). start must sort before
// end (CodeInvalidArgument otherwise); other errors are those of Set.
func (b *Batch) DeleteRange(start, end []byte) error {
	b.live()
	if err := checkKey(start); err != nil {
		return err
	}
	if err := checkKey(end); err != nil {
		return err
	}
	if bytes.Compare(start, end) >= 0 {
		return base.Errorf(base.CodeInvalidArgument, "meta: delete range [%q, %q) is empty or reversed", start, end)
	}
	if err := b.reserve(len(start) + len(end)); err != nil {
		return err
	}
	return b.pb.DeleteRange(start, end, nil)
}

// DeletePrefix removes every key that starts with prefix, which must be
// non-empty and not all 0xFF bytes (CodeInvalidArgument).
func (b *Batch) DeletePrefix(prefix []byte) error {
	end := PrefixEnd(prefix)
	if end == nil {
		b.live()
		return base.Errorf(base.CodeInvalidArgument, "meta: prefix %q has no upper bound to delete to", prefix)
	}
	return b.DeleteRange(prefix, end)
}

// Len returns the number of operations in the batch.
func (b *Batch) Len() int {
	b.live()
	return int(b.pb.Count())
}

// Bytes returns the bytes of keys and values in the batch, the quantity
// bounded by base.MetaBatchBytesMax.
func (b *Batch) Bytes() int { return b.bytes }

// Close discards a batch that will not be committed. Closing a spent batch
// does nothing, so `defer b.Close()` is safe after Commit.
func (b *Batch) Close() {
	if b.pb != nil {
		_ = b.pb.Close()
		b.pb = nil
	}
}

// Commit applies b atomically and spends it. With Sync it returns nil only
// once b and every batch committed before it are durable; concurrent Sync
// commits share one fsync. With NoSync it returns once b is applied in
// memory. An empty batch committed with Sync makes the earlier NoSync
// batches durable.
//
// Errors: CodeStopped after Close; CodeStorageFailed when the store has
// failed, before or during this commit. A failed commit may or may not be
// on disk after a restart; a failed store refuses every later call (see
// Err), and nothing is ever reported committed that a sync did not cover.
func (s *Store) Commit(b *Batch, d Durability) (err error) {
	b.live()
	base.Assert(b.s == s, "meta: batch of another store committed")
	base.Assert(d == Sync || d == NoSync, "meta: durability %d is neither Sync nor NoSync", d)
	defer b.Close()
	if err := s.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	// Pebble calls Fatalf when a commit fails (its WAL write or sync), after
	// releasing its commit pipeline; the panic becomes this call's error.
	defer recoverFatal(&err)
	wo := pebble.NoSync
	if d == Sync {
		wo = pebble.Sync
		if b.pb.Empty() {
			// Pebble skips empty batches; a log record makes it sync.
			_ = b.pb.LogData(nil, nil)
		}
	}
	applyErr := s.db.Apply(b.pb, wo)
	// The fence decides, checked after Apply: a failure anywhere in the
	// store while this batch committed (a WAL sync that a concurrent
	// commit shared, a write Pebble did not report to this batch) fails
	// it. That failure may postdate a successful sync, and reporting such a
	// commit failed is allowed; the reverse never is.
	if ferr := s.fence.err(); ferr != nil {
		return ferr
	}
	if applyErr != nil {
		s.fence.trip(applyErr)
		return s.fence.err()
	}
	return nil
}

// checkKey refuses empty keys and keys over base.MetaKeyBytesMax.
func checkKey(key []byte) error {
	if len(key) == 0 {
		return base.Errorf(base.CodeInvalidArgument, "meta: empty key")
	}
	if len(key) > base.MetaKeyBytesMax {
		return base.Errorf(base.CodeTooLarge, "meta: key of %d bytes, over the limit of %d", len(key), base.MetaKeyBytesMax)
	}
	return nil
}
