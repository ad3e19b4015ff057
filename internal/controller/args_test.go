package controller

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
)

// TestArgumentsDocumented fails when docs/arguments.md misses an argument,
// Kafka config or policy key the controller supports, or names an x-
// argument the controller does not know (a stale document).
func TestArgumentsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/arguments.md")
	if err != nil {
		t.Fatalf("reading the arguments document: %v", err)
	}
	text := string(doc)
	var want []string
	for _, s := range argSpecs {
		want = append(want, s.key)
		if s.policyKey != "" {
			want = append(want, s.policyKey)
		}
	}
	for _, s := range kafkaSpecs {
		want = append(want, s.key)
	}
	for _, key := range want {
		if !strings.Contains(text, "`"+key+"`") {
			t.Errorf("docs/arguments.md does not document `%s`", key)
		}
	}
	for _, m := range regexp.MustCompile("`(x-[a-z-]*[a-z])`").FindAllStringSubmatch(text, -1) {
		if _, ok := specByKey[m[1]]; !ok {
			t.Errorf("docs/arguments.md documents `%s`, which the controller does not support", m[1])
		}
	}
}

func TestDeadLetterTargetRoundTrips(t *testing.T) {
	for _, d := range []DeadLetter{
		{},
		{Set: true},
		{Set: true, Exchange: "dlx"},
		{Set: true, Exchange: "with \"quotes\" and \x00 bytes", RoutingKey: "k", HasRoutingKey: true},
		{Set: true, Exchange: "", RoutingKey: "", HasRoutingKey: true},
	} {
		s := FormatDeadLetterTarget(d)
		got, err := ParseDeadLetterTarget(s)
		if err != nil || got != d {
			t.Errorf("ParseDeadLetterTarget(%q): got %+v, %v; want %+v", s, got, err, d)
		}
		if len(s) > base.QueueFieldBytesMax {
			t.Errorf("target %q exceeds QueueFieldBytesMax", s)
		}
	}
	// The longest names, every byte escaped, still fit the queue's field.
	worst := DeadLetter{Set: true, Exchange: strings.Repeat("\x00", base.RoutingNameBytesMax),
		RoutingKey: strings.Repeat("\x00", base.RoutingKeyBytesMax), HasRoutingKey: true}
	if n := len(FormatDeadLetterTarget(worst)); n > base.QueueFieldBytesMax {
		t.Errorf("worst-case dead-letter target: got %d bytes, want at most %d", n, base.QueueFieldBytesMax)
	}
	for _, bad := range []string{"dlx", "dlx x", `dlx "a" "b" "c"`, `dlx "a"x`, `xx "a"`, `dlx "a" b`} {
		if _, err := ParseDeadLetterTarget(bad); err == nil {
			t.Errorf("ParseDeadLetterTarget(%q): got no error", bad)
		}
	}
}

func TestRetryReasonsLimitEdge(t *testing.T) {
	entries := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("r%03d=fixed/%d", i, i)
		}
		return strings.Join(parts, ";")
	}
	got, err := parseRetryReasons(entries(base.QueueRetryReasonsMax))
	if err != nil || len(got) != base.QueueRetryReasonsMax {
		t.Fatalf("%d reasons: got %d, %v; want all accepted", base.QueueRetryReasonsMax, len(got), err)
	}
	if _, err := parseRetryReasons(entries(base.QueueRetryReasonsMax + 1)); err == nil {
		t.Fatalf("%d reasons: got no error, want the limit refused", base.QueueRetryReasonsMax+1)
	}
	cfg := queue.Config{Retry: queue.RetryPolicy{Reasons: got}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the queue refuses parsed reasons: %v", err)
	}
}

func TestParseScheduleForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want queue.Schedule
	}{
		{"none", queue.Schedule{}},
		{"dead-letter", queue.Schedule{Kind: queue.BackoffDeadLetter}},
		{"fixed/250", queue.Schedule{Kind: queue.BackoffFixed, DelayMs: 250}},
		{"exponential/100/5000", queue.Schedule{Kind: queue.BackoffExponential, DelayMs: 100, MaxDelayMs: 5000}},
		{"exponential/100/5000/jitter", queue.Schedule{Kind: queue.BackoffExponential, DelayMs: 100, MaxDelayMs: 5000, Jitter: true}},
		{"fixed/jitter", queue.Schedule{Kind: queue.BackoffFixed, Jitter: true}},
	} {
		got, err := parseSchedule(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSchedule(%q): got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "jitter", "fixed/1/2/3", "fixed/-1", "later", "fixed/1099511627777"} {
		if _, err := parseSchedule(bad); err == nil {
			t.Errorf("parseSchedule(%q): got no error", bad)
		}
	}
}

// TestArgsTableLimitEdges checks ControllerArgsFieldsMax and
// ControllerArgsBytesMax at their edges through a declaration.
func TestArgsTableLimitEdges(t *testing.T) {
	fields := func(n, valueBytes int) []routing.Field {
		out := make([]routing.Field, n)
		for i := range out {
			out[i] = routing.Field{Key: fmt.Sprintf("x-k%04d", i), Value: routing.StringValue(strings.Repeat("v", valueBytes))}
		}
		return out
	}
	if _, err := canonicalArgs(fields(base.ControllerArgsFieldsMax, 1)); err != nil {
		t.Fatalf("%d fields: %v", base.ControllerArgsFieldsMax, err)
	}
	_, err := canonicalArgs(fields(base.ControllerArgsFieldsMax+1, 1))
	if base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("%d fields: got %v, want invalid_argument", base.ControllerArgsFieldsMax+1, err)
	}
	one := func(valueBytes int) []routing.Field { return fields(1, valueBytes) }
	overhead := argsBytes(one(0))
	if _, err := canonicalArgs(one(base.ControllerArgsBytesMax - overhead - 1)); err != nil {
		t.Fatalf("a table just under %d bytes: %v", base.ControllerArgsBytesMax, err)
	}
	// The value's length prefix grows by one byte at 128, so measure.
	exact := base.ControllerArgsBytesMax - overhead
	for argsBytes(one(exact)) > base.ControllerArgsBytesMax {
		exact--
	}
	if n := argsBytes(one(exact)); n != base.ControllerArgsBytesMax {
		t.Fatalf("could not build a table of exactly %d bytes (got %d)", base.ControllerArgsBytesMax, n)
	}
	if _, err := canonicalArgs(one(exact)); err != nil {
		t.Fatalf("a table of exactly %d bytes: %v", base.ControllerArgsBytesMax, err)
	}
	if _, err := canonicalArgs(one(exact + 1)); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("a table of %d bytes: got %v, want invalid_argument", argsBytes(one(exact+1)), err)
	}
}

// TestCanonicalArgsKeepsTheFirstDuplicate pins AMQP's table lookup: the
// first occurrence of a key wins.
func TestCanonicalArgsKeepsTheFirstDuplicate(t *testing.T) {
	got, err := canonicalArgs([]routing.Field{
		{Key: "x-max-length", Value: routing.IntValue(1)},
		{Key: "x-a", Value: routing.IntValue(0)},
		{Key: "x-max-length", Value: routing.IntValue(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "x-a" || got[1].Value.Int() != 1 {
		t.Fatalf("canonical args: got %v, want x-a then x-max-length=1", FormatArgs(got))
	}
}
