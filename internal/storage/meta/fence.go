package meta

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
)

// fence is the fail-stop switch of one store. It trips on the first failed
// write, sync or other mutation of the disk, on a failed read, and on any
// Pebble Fatalf; from
// then on the file system adapter refuses every operation, so nothing Pebble
// does afterwards can reach the disk, and every Store call returns the
// failure. It never resets: a failed store must be closed and reopened
// (which replays the WAL from what the disk really holds).
type fence struct {
	failure atomic.Pointer[base.Error] // nil while healthy; the first failure, CodeStorageFailed
	tripped chan struct{}              // closed when failure is set
	log     *slog.Logger
}

func newFence(log *slog.Logger) *fence {
	return &fence{tripped: make(chan struct{}), log: log}
}

// trip records err as the store's failure unless one is recorded already.
func (f *fence) trip(err error) {
	e := base.Errorf(base.CodeStorageFailed, "meta: storage failed, the store refuses all further operations: %w", err)
	if !f.failure.CompareAndSwap(nil, e) {
		return
	}
	close(f.tripped)
	f.log.Error("meta: storage failed; the store is stopped until reopened", "err", err)
}

// err returns the failure, or nil while the store is healthy. The error has
// code CodeStorageFailed and wraps the first cause.
func (f *fence) err() error {
	if e := f.failure.Load(); e != nil {
		return e
	}
	return nil
}

// refuse returns the error an operation on a fenced store gets, naming the
// operation, or nil while healthy.
func (f *fence) refuse(op, name string) error {
	if e := f.failure.Load(); e != nil {
		return fmt.Errorf("meta: %s %s refused: %w", op, name, e)
	}
	return nil
}

// pebbleLogger routes Pebble's log lines to slog and turns its Fatalf into a
// tripped fence and a panic. Pebble calls Fatalf where it cannot continue
// (a failed MANIFEST write or WAL commit, corruption) and its code after the
// call assumes the process is gone: a compaction that carried on after a
// failed MANIFEST write was seen to break Pebble's L0 invariants. So Fatalf
// never returns. In a Store call's goroutine the panic is recovered and the
// call returns the failure (see recoverFatal); in Pebble's background
// goroutines it stops the process, which is fail-stop for the node.
type pebbleLogger struct {
	log   *slog.Logger
	fence *fence
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Info("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.fence.trip(&fatalError{msg: fmt.Sprintf(format, args...), cause: firstError(args)})
	panic(fatalPanic{err: l.fence.err()})
}

// fatalPanic is the value Fatalf panics with.
type fatalPanic struct{ err error }

func (p fatalPanic) String() string { return p.err.Error() }

// recoverFatal, deferred by a Store call, turns a Fatalf panic in that
// call's goroutine into the store's failure, stored in *err. Other panics
// go on: they may hold Pebble's locks, and recovering would deadlock Close.
func recoverFatal(err *error) {
	r := recover()
	if r == nil {
		return
	}
	p, ok := r.(fatalPanic)
	if !ok {
		panic(r)
	}
	*err = p.err
}

// fatalError is what a Pebble Fatalf says, keeping the error among its
// arguments (if any) reachable through errors.Is and errors.As.
type fatalError struct {
	msg   string
	cause error
}

func (e *fatalError) Error() string { return "pebble: fatal: " + e.msg }
func (e *fatalError) Unwrap() error { return e.cause }

func firstError(args []any) error {
	for _, a := range args {
		if err, ok := a.(error); ok {
			return err
		}
	}
	return nil
}

// isStorageFailure reports whether err is a store failure (as opposed to a
// caller mistake or a missing key).
func isStorageFailure(err error) bool {
	var e *base.Error
	return errors.As(err, &e) && e.Code == base.CodeStorageFailed
}
