package base

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestCodesAreStable pins every code's number, name and retriability: clients
// and dashboards depend on them, so a change here must be deliberate.
func TestCodesAreStable(t *testing.T) {
	want := []struct {
		code      Code
		num       uint16
		name      string
		retriable bool
	}{
		{CodeInternal, 1, "internal", false},
		{CodeInvalidArgument, 100, "invalid_argument", false},
		{CodeNotFound, 101, "not_found", false},
		{CodePreconditionFailed, 102, "precondition_failed", false},
		{CodeAccessRefused, 103, "access_refused", false},
		{CodeUnauthenticated, 104, "unauthenticated", false},
		{CodeTooLarge, 105, "too_large", false},
		{CodeResourceLocked, 106, "resource_locked", false},
		{CodeNotSupported, 107, "not_supported", false},
		{CodeOutOfRange, 108, "out_of_range", false},
		{CodeCorrupt, 109, "corrupt", false},
		{CodeConflict, 110, "conflict", false},
		{CodeNotLeader, 200, "not_leader", true},
		{CodeTimeout, 201, "timeout", true},
		{CodeUnavailable, 202, "unavailable", true},
		{CodeOverloaded, 203, "overloaded", true},
		{CodeNoSpace, 204, "no_space", true},
		{CodeStopped, 205, "stopped", true},
		{CodeStorageFailed, 300, "storage_failed", false},
	}
	if got := len(Codes()); got != len(want) {
		t.Fatalf("Codes() has %d codes, the pinned table %d: pin the new code here", got, len(want))
	}
	for _, w := range want {
		if uint16(w.code) != w.num || w.code.String() != w.name || w.code.Retriable() != w.retriable {
			t.Errorf("code %d: got (%d, %q, retriable=%v), want (%d, %q, retriable=%v)",
				w.num, uint16(w.code), w.code.String(), w.code.Retriable(), w.num, w.name, w.retriable)
		}
	}
}

func TestErrorMatchesByCodeAndUnwraps(t *testing.T) {
	err := fmt.Errorf("publishing: %w", Errorf(CodeNotLeader, "group 7: leader is node %d: %w", 3, io.ErrUnexpectedEOF))
	if !errors.Is(err, &Error{Code: CodeNotLeader}) {
		t.Errorf("errors.Is by code: got false, want true")
	}
	if errors.Is(err, &Error{Code: CodeTimeout}) {
		t.Errorf("errors.Is with another code: got true, want false")
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cause not unwrapped")
	}
	if got := CodeOf(err); got != CodeNotLeader {
		t.Errorf("CodeOf: got %v, want %v", got, CodeNotLeader)
	}
	if !IsRetriable(err) {
		t.Errorf("IsRetriable(not_leader): got false, want true")
	}
	if got := CodeOf(io.EOF); got != CodeInternal {
		t.Errorf("CodeOf(plain error): got %v, want internal", got)
	}
	if got := CodeOf(nil); got != 0 {
		t.Errorf("CodeOf(nil): got %v, want 0", got)
	}
	if got, want := err.Error(), "publishing: group 7: leader is node 3: unexpected EOF"; got != want {
		t.Errorf("message: got %q, want %q", got, want)
	}
}

func TestBugfPanicsWithBUGPrefix(t *testing.T) {
	defer func() {
		r := recover()
		if s, _ := r.(string); s != "BUG: offset 5 went backwards" {
			t.Errorf("panic value: got %v, want %q", r, "BUG: offset 5 went backwards")
		}
	}()
	Assert(false, "offset %d went backwards", 5)
	t.Errorf("Assert(false) returned")
}

// TestCodeNamedInvertsString: every code is found by its name, and a name
// no code has is not.
func TestCodeNamedInvertsString(t *testing.T) {
	for _, c := range Codes() {
		if got, ok := CodeNamed(c.String()); !ok || got != c {
			t.Errorf("CodeNamed(%q) = %v, %v; want %v, true", c.String(), got, ok, c)
		}
	}
	if got, ok := CodeNamed("no_such_code"); ok {
		t.Errorf("CodeNamed(\"no_such_code\") = %v, true; want false", got)
	}
}
