package main

import (
	"errors"
	"net"
	"syscall"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/server"
)

// Exit codes of every ferry command (docs/cli.md). They never change
// meaning once released: scripts depend on them.
const (
	ExitOK          = 0 // success
	ExitError       = 1 // a runtime failure not covered below
	ExitUsage       = 2 // bad command line or configuration: fix the invocation
	ExitUnavailable = 3 // cannot connect to the node, or it is not ready / has no quorum
	ExitNotFound    = 4 // the named queue, stream, exchange, user, ... does not exist
	ExitRefused     = 5 // authentication failed or permission refused
	ExitPartial     = 6 // finished, but not everything succeeded (e.g. bench saw loss)
)

// exitError carries the exit code a command chose.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitErr returns err with an explicit exit code; nil stays nil.
func exitErr(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageError marks a bad command line (unknown flag, missing argument):
// ExitUsage, and main points at --help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCodeOf maps an error returned by a command to the process's exit
// code.
func exitCodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue *usageError
	var ce *server.ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return ExitUsage
	}
	if errors.Is(err, syscall.ECONNREFUSED) || isDialError(err) {
		return ExitUnavailable
	}
	var be *base.Error
	if errors.As(err, &be) {
		return exitCodeFor(be.Code)
	}
	return ExitError
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// exitCodeFor maps a base error code (what the HTTP API's JSON errors and
// the broker carry) to an exit code.
func exitCodeFor(c base.Code) int {
	switch c {
	case base.CodeNotFound:
		return ExitNotFound
	case base.CodeAccessRefused, base.CodeUnauthenticated:
		return ExitRefused
	case base.CodeInvalidArgument:
		return ExitUsage
	case base.CodeUnavailable, base.CodeNotLeader, base.CodeStopped, base.CodeTimeout:
		return ExitUnavailable
	}
	return ExitError
}
