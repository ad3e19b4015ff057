package controller

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
)

// This file turns queue.declare arguments (and the policy values merged
// with them) into typed configuration, with RabbitMQ's names, types,
// checks and error words. docs/arguments.md documents every argument of
// argSpecs; TestArgumentsDocumented fails when one is missing there.

// argScope says which entities an argument applies to.
type argScope uint8

const (
	scopeQueue  argScope = 1 << iota // classic and quorum queues
	scopeStream                      // streams
	scopeBoth   = scopeQueue | scopeStream
)

// argSpec is one supported argument.
type argSpec struct {
	key   string
	scope argScope
	// policyKey is the policy definition key that sets the same thing
	// ("" when no policy can), RabbitMQ's name without "x-".
	policyKey string
	// noEffect marks arguments accepted and compared for RabbitMQ
	// compatibility that change nothing in Ferry.
	noEffect bool
	// check returns "" when v is acceptable, else the reason in
	// RabbitMQ's words (an Erlang term as RabbitMQ prints it). args is
	// the whole table being declared, nil when v comes from a policy.
	check func(v routing.Value, args []routing.Field) string
	// applyQueue and applyStream store an accepted value; nil where the
	// argument has no effect on that kind.
	applyQueue  func(v routing.Value, c *queueSettings)
	applyStream func(v routing.Value, c *streamSettings)
}

// queueSettings is what a queue's arguments (and policy) say.
type queueSettings struct {
	cfg QueueConfig
	rf  int // requested replication factor; 0 for the default
}

// streamSettings is what a stream's arguments (and policy) say.
type streamSettings struct {
	cfg        StreamConfig
	rf         int // 0 for the default
	partitions int // 0 for the default (one)
}

// RabbitMQ's limit on x-message-ttl and x-expires (erlang:send_after's).
const rabbitExpiryMax = 1<<32 - 1

// argSpecs lists every supported argument, in the order RabbitMQ checks
// them (rabbit_amqqueue:declare_args), Ferry's own after.
var argSpecs = []argSpec{
	{key: "x-expires", scope: scopeQueue, policyKey: "expires", check: checkExpires,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.ExpiresMs = uint64(v.Int()) }},
	{key: "x-message-ttl", scope: scopeQueue, policyKey: "message-ttl", check: checkTTL,
		applyQueue: func(v routing.Value, c *queueSettings) {
			// queue.Config has no "expire at once": 0 there means no TTL.
			c.cfg.Queue.MessageTTLms = max(uint64(v.Int()), 1)
		}},
	{key: "x-dead-letter-exchange", scope: scopeQueue, policyKey: "dead-letter-exchange", check: checkExchangeName,
		applyQueue: func(v routing.Value, c *queueSettings) {
			c.cfg.DeadLetter.Set, c.cfg.DeadLetter.Exchange = true, v.Text()
		}},
	{key: "x-dead-letter-routing-key", scope: scopeQueue, policyKey: "dead-letter-routing-key", check: checkDLRK,
		applyQueue: func(v routing.Value, c *queueSettings) {
			c.cfg.DeadLetter.HasRoutingKey, c.cfg.DeadLetter.RoutingKey = true, v.Text()
		}},
	{key: "x-dead-letter-strategy", scope: scopeQueue, noEffect: true,
		check: checkOneOf("invalid_dlx_strategy", "at-most-once", "at-least-once")},
	{key: "x-max-length", scope: scopeQueue, policyKey: "max-length", check: checkPositiveInt,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.MaxLength = uint64(v.Int()) }},
	{key: "x-max-length-bytes", scope: scopeBoth, policyKey: "max-length-bytes", check: checkPositiveInt,
		applyQueue:  func(v routing.Value, c *queueSettings) { c.cfg.Queue.MaxLengthBytes = uint64(v.Int()) },
		applyStream: func(v routing.Value, c *streamSettings) { c.cfg.Partition.RetentionBytes = v.Int() }},
	{key: "x-max-priority", scope: scopeQueue, check: checkMaxPriority,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.MaxPriority = uint8(v.Int()) }},
	{key: "x-overflow", scope: scopeQueue, policyKey: "overflow",
		check: checkOneOf("invalid_overflow", "drop-head", "reject-publish", "reject-publish-dlx"),
		applyQueue: func(v routing.Value, c *queueSettings) {
			c.cfg.Queue.Overflow = map[string]queue.Overflow{"drop-head": queue.OverflowDropHead,
				"reject-publish": queue.OverflowRejectPublish, "reject-publish-dlx": queue.OverflowRejectPublishDLX}[v.Text()]
		}},
	{key: "x-queue-mode", scope: scopeQueue, noEffect: true, check: checkQueueMode},
	{key: "x-queue-version", scope: scopeQueue, noEffect: true, check: checkQueueVersion},
	{key: "x-single-active-consumer", scope: scopeQueue, check: checkBool,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.SingleActiveConsumer = v.Bool() }},
	{key: "x-queue-type", scope: scopeBoth, check: checkQueueType},
	{key: "x-quorum-initial-group-size", scope: scopeQueue, check: checkReplicationFactor,
		applyQueue: func(v routing.Value, c *queueSettings) { c.rf = int(v.Int()) }},
	{key: "x-max-age", scope: scopeStream, policyKey: "max-age", check: checkMaxAge,
		applyStream: func(v routing.Value, c *streamSettings) {
			ms, _ := auth.ParseMaxAge(v.Text())
			c.cfg.Partition.RetentionMs = ms
		}},
	{key: "x-stream-max-segment-size-bytes", scope: scopeStream, policyKey: "stream-max-segment-size-bytes",
		check:       checkSegmentBytes,
		applyStream: func(v routing.Value, c *streamSettings) { c.cfg.SegmentBytes = v.Int() }},
	{key: "x-stream-filter-size-bytes", scope: scopeStream, noEffect: true, check: checkFilterSize},
	{key: "x-initial-cluster-size", scope: scopeStream, check: checkReplicationFactor,
		applyStream: func(v routing.Value, c *streamSettings) { c.rf = int(v.Int()) }},
	{key: "x-queue-leader-locator", scope: scopeBoth, noEffect: true,
		check: checkOneOf("invalid_queue_locator_arg", "client-local", "balanced")},
	{key: "x-delivery-limit", scope: scopeQueue, policyKey: "delivery-limit", check: checkDeliveryLimit,
		applyQueue: func(v routing.Value, c *queueSettings) {
			c.cfg.Queue.Retry.DeliveryLimit = uint32(max(v.Int(), 0)) // -1: unlimited, which is 0 here
		}},
	{key: "x-consumer-timeout", scope: scopeQueue, check: checkDurationMs,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.AckTimeoutMs = uint64(v.Int()) }},
	{key: "x-ferry-backoff", scope: scopeQueue, check: checkBackoffKind,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.Retry.Default.Kind = backoffKinds[v.Text()] }},
	{key: "x-ferry-backoff-base", scope: scopeQueue, check: checkDurationMs,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.Retry.Default.DelayMs = uint64(v.Int()) }},
	{key: "x-ferry-backoff-cap", scope: scopeQueue, check: checkDurationMs,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.Retry.Default.MaxDelayMs = uint64(v.Int()) }},
	{key: "x-ferry-backoff-jitter", scope: scopeQueue, check: checkBool,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.Retry.Default.Jitter = v.Bool() }},
	{key: "x-ferry-retry-reasons", scope: scopeQueue, check: checkRetryReasons,
		applyQueue: func(v routing.Value, c *queueSettings) {
			c.cfg.Queue.Retry.Reasons, _ = parseRetryReasons(v.Text())
		}},
	{key: "x-ferry-dedupe-window", scope: scopeQueue, check: checkDedupeWindow,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.Queue.DedupeWindowMs = uint64(v.Int()) }},
	{key: "x-ferry-ordering-key", scope: scopeQueue, check: checkBool,
		applyQueue: func(v routing.Value, c *queueSettings) { c.cfg.OrderingByKey = v.Bool() }},
	{key: "x-ferry-partitions", scope: scopeStream, check: checkPartitions,
		applyStream: func(v routing.Value, c *streamSettings) { c.partitions = int(v.Int()) }},
}

// specByKey and specByPolicyKey index argSpecs.
var specByKey, specByPolicyKey = func() (map[string]*argSpec, map[string]*argSpec) {
	byKey, byPolicy := map[string]*argSpec{}, map[string]*argSpec{}
	for i := range argSpecs {
		s := &argSpecs[i]
		byKey[s.key] = s
		if s.policyKey != "" {
			byPolicy[s.policyKey] = s
		}
	}
	return byKey, byPolicy
}()

// rabbitType names a value's type as RabbitMQ's messages do. Integers of
// every AMQP width arrive as one kind, reported as long.
func rabbitType(v routing.Value) string {
	switch v.Kind() {
	case routing.KindVoid:
		return "void"
	case routing.KindBool:
		return "bool"
	case routing.KindInt:
		return "long"
	case routing.KindFloat:
		return "double"
	case routing.KindString:
		return "longstr"
	case routing.KindEncoded:
		return "table"
	}
	return "binary"
}

func isInt(v routing.Value) bool    { return v.Kind() == routing.KindInt }
func isString(v routing.Value) bool { return v.Kind() == routing.KindString }

func unacceptable(v routing.Value) string { return "{unacceptable_type," + rabbitType(v) + "}" }

func expectedInteger(v routing.Value) string {
	return strconv.Quote("expected integer, got " + rabbitType(v))
}

func checkBool(v routing.Value, _ []routing.Field) string {
	if v.Kind() != routing.KindBool {
		return unacceptable(v)
	}
	return ""
}

func checkNonNegInt(v routing.Value) string {
	switch {
	case !isInt(v):
		return expectedInteger(v)
	case v.Int() < 0:
		return fmt.Sprintf("{value_negative,%d}", v.Int())
	}
	return ""
}

// checkPositiveInt is RabbitMQ's check_non_neg_int_arg without 0: a
// queue.Config limit of 0 means "no limit", so Ferry cannot give 0 the
// meaning RabbitMQ does ("hold nothing").
func checkPositiveInt(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	if v.Int() == 0 {
		return "{value_zero,0}"
	}
	return ""
}

func checkExpiry(v routing.Value) string {
	if !isInt(v) {
		return expectedInteger(v)
	}
	switch n := v.Int(); {
	case n < 0:
		return fmt.Sprintf("{value_negative,%d}", n)
	case n > rabbitExpiryMax:
		return fmt.Sprintf("{value_too_large,%d}", n)
	}
	return ""
}

func checkExpires(v routing.Value, _ []routing.Field) string {
	if isInt(v) && v.Int() == 0 {
		return "{value_zero,0}"
	}
	return checkExpiry(v)
}

func checkTTL(v routing.Value, _ []routing.Field) string { return checkExpiry(v) }

func checkExchangeName(v routing.Value, _ []routing.Field) string {
	if !isString(v) {
		return unacceptable(v)
	}
	if len(v.Text()) > base.RoutingNameBytesMax {
		return fmt.Sprintf("{name_too_long,%d}", len(v.Text()))
	}
	return ""
}

func checkDLRK(v routing.Value, args []routing.Field) string {
	if !isString(v) {
		return unacceptable(v)
	}
	if len(v.Text()) > base.RoutingKeyBytesMax {
		return fmt.Sprintf("{routing_key_too_long,%d}", len(v.Text()))
	}
	if args != nil {
		if _, ok := lookupField(args, "x-dead-letter-exchange"); !ok {
			return "routing_key_but_no_dlx_defined"
		}
	}
	return ""
}

// checkOneOf accepts one of the strings allowed; anything else is err
// (RabbitMQ's atom for it), a non-string {unacceptable_type,T}.
func checkOneOf(err string, allowed ...string) func(routing.Value, []routing.Field) string {
	return func(v routing.Value, _ []routing.Field) string {
		if !isString(v) {
			return unacceptable(v)
		}
		if !slices.Contains(allowed, v.Text()) {
			return err
		}
		return ""
	}
}

func checkMaxPriority(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	if v.Int() > base.QueuePriorityMax {
		return fmt.Sprintf("{max_value_exceeded,%d}", v.Int())
	}
	return ""
}

func checkQueueMode(v routing.Value, _ []routing.Field) string {
	if !isString(v) {
		return unacceptable(v)
	}
	if v.Text() != "default" && v.Text() != "lazy" {
		return strconv.Quote(fmt.Sprintf("unsupported queue mode '%s'", v.Text()))
	}
	return ""
}

func checkQueueVersion(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	if v.Int() != 1 && v.Int() != 2 {
		return strconv.Quote(fmt.Sprintf("unsupported queue version '%d'", v.Int()))
	}
	return ""
}

func checkQueueType(v routing.Value, _ []routing.Field) string {
	if !isString(v) {
		return unacceptable(v)
	}
	if _, ok := parseQueueType(v.Text()); !ok {
		return strconv.Quote(fmt.Sprintf("unsupported queue type '%s'", v.Text()))
	}
	return ""
}

func parseQueueType(s string) (QueueType, bool) {
	for t := TypeClassic; t <= TypeStream; t++ {
		if queueTypeNames[t] == s {
			return t, true
		}
	}
	return 0, false
}

func checkReplicationFactor(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	switch n := v.Int(); {
	case n == 0:
		return "{value_zero,0}"
	case n > base.ControllerReplicationFactorMax:
		return fmt.Sprintf("{value_too_large,%d}", n)
	}
	return ""
}

func checkMaxAge(v routing.Value, _ []routing.Field) string {
	if !isString(v) {
		return unacceptable(v)
	}
	if _, err := auth.ParseMaxAge(v.Text()); err != nil {
		return "invalid_max_age"
	}
	return ""
}

func checkSegmentBytes(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	switch n := v.Int(); {
	case n < base.SegmentBytesMin:
		return fmt.Sprintf("{value_too_small,%d}", n)
	case n > base.SegmentBytesMax:
		return fmt.Sprintf("{value_too_large,%d}", n)
	}
	return ""
}

func checkFilterSize(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	if n := v.Int(); n < 16 || n > 255 {
		return fmt.Sprintf("{out_of_range,%d}", n) // RabbitMQ's bounds for the bloom filter size
	}
	return ""
}

func checkDeliveryLimit(v routing.Value, _ []routing.Field) string {
	if !isInt(v) {
		return expectedInteger(v)
	}
	switch n := v.Int(); {
	case n == -1:
		return "" // RabbitMQ 4: unlimited
	case n < 0:
		return fmt.Sprintf("{value_negative,%d}", n)
	case n == 0:
		return "{value_zero,0}" // queue.Config's 0 means unlimited
	case n > base.QueueDeliveryLimitMax:
		return fmt.Sprintf("{value_too_large,%d}", n)
	}
	return ""
}

func checkDurationMs(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	if v.Int() > base.QueueDurationMsMax {
		return fmt.Sprintf("{value_too_large,%d}", v.Int())
	}
	return ""
}

func checkDedupeWindow(v routing.Value, args []routing.Field) string {
	if e := checkDurationMs(v, args); e != "" {
		return e
	}
	n := v.Int()
	if n != 0 && (n < base.QueueDedupeWindowMin.Milliseconds() || n > base.QueueDedupeWindowMax.Milliseconds()) {
		return fmt.Sprintf("{out_of_range,%d}", n)
	}
	return ""
}

func checkPartitions(v routing.Value, _ []routing.Field) string {
	if e := checkNonNegInt(v); e != "" {
		return e
	}
	switch n := v.Int(); {
	case n == 0:
		return "{value_zero,0}"
	case n > base.ControllerStreamPartitionsMax:
		return fmt.Sprintf("{value_too_large,%d}", n)
	}
	return ""
}

var backoffKinds = map[string]queue.BackoffKind{"none": queue.BackoffNone, "fixed": queue.BackoffFixed,
	"exponential": queue.BackoffExponential, "dead-letter": queue.BackoffDeadLetter}

func checkBackoffKind(v routing.Value, _ []routing.Field) string {
	if !isString(v) {
		return unacceptable(v)
	}
	if _, ok := backoffKinds[v.Text()]; !ok {
		return "invalid_backoff"
	}
	return ""
}

func checkRetryReasons(v routing.Value, _ []routing.Field) string {
	if !isString(v) {
		return unacceptable(v)
	}
	if _, err := parseRetryReasons(v.Text()); err != nil {
		return strconv.Quote(err.Error())
	}
	return ""
}

// parseRetryReasons reads x-ferry-retry-reasons: schedules separated by
// ';', each "reason=kind[/baseMs[/capMs]][/jitter]", e.g.
// "ack-timeout=exponential/1000/60000/jitter;poison=dead-letter". The
// result is sorted by reason.
func parseRetryReasons(s string) ([]queue.ReasonSchedule, error) {
	var out []queue.ReasonSchedule
	for entry := range strings.SplitSeq(s, ";") {
		reason, sched, ok := strings.Cut(entry, "=")
		if !ok || reason == "" {
			return nil, fmt.Errorf("entry %q is not reason=schedule", entry)
		}
		if len(out) == base.QueueRetryReasonsMax {
			return nil, fmt.Errorf("more than %d reasons", base.QueueRetryReasonsMax)
		}
		sc, err := parseSchedule(sched)
		if err != nil {
			return nil, fmt.Errorf("reason %q: %w", reason, err)
		}
		out = append(out, queue.ReasonSchedule{Reason: reason, Schedule: sc})
	}
	slices.SortFunc(out, func(a, b queue.ReasonSchedule) int { return strings.Compare(a.Reason, b.Reason) })
	for i := 1; i < len(out); i++ {
		if out[i].Reason == out[i-1].Reason {
			return nil, fmt.Errorf("reason %q given twice", out[i].Reason)
		}
	}
	return out, nil
}

func parseSchedule(s string) (queue.Schedule, error) {
	parts := strings.Split(s, "/")
	var sc queue.Schedule
	if parts[len(parts)-1] == "jitter" {
		sc.Jitter = true
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 || len(parts) > 3 {
		return sc, fmt.Errorf("schedule %q is not kind[/baseMs[/capMs]][/jitter]", s)
	}
	kind, ok := backoffKinds[parts[0]]
	if !ok {
		return sc, fmt.Errorf("unknown backoff %q", parts[0])
	}
	sc.Kind = kind
	for i, p := range parts[1:] {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n > base.QueueDurationMsMax {
			return sc, fmt.Errorf("%q is not a duration in ms up to %d", p, uint64(base.QueueDurationMsMax))
		}
		if i == 0 {
			sc.DelayMs = n
		} else {
			sc.MaxDelayMs = n
		}
	}
	return sc, nil
}

// lookupField finds key in canonical args.
func lookupField(args []routing.Field, key string) (routing.Value, bool) {
	i, ok := slices.BinarySearchFunc(args, key, func(f routing.Field, k string) int { return strings.Compare(f.Key, k) })
	if !ok {
		return routing.Value{}, false
	}
	return args[i].Value, true
}

// canonicalArgs returns a sorted copy of args with the first of a
// duplicated key kept (AMQP table lookup finds the first), checked
// against ControllerArgsFieldsMax and ControllerArgsBytesMax.
func canonicalArgs(args []routing.Field) ([]routing.Field, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if len(args) > base.ControllerArgsFieldsMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "arguments table of %d fields exceeds the limit of %d (ControllerArgsFieldsMax)",
			len(args), base.ControllerArgsFieldsMax)
	}
	out := slices.Clone(args)
	slices.SortStableFunc(out, func(a, b routing.Field) int { return strings.Compare(a.Key, b.Key) })
	out = slices.CompactFunc(out, func(a, b routing.Field) bool { return a.Key == b.Key })
	if n := argsBytes(out); n > base.ControllerArgsBytesMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "arguments table of %d bytes exceeds the limit of %d (ControllerArgsBytesMax)",
			n, base.ControllerArgsBytesMax)
	}
	return out, nil
}

// argsBytes is the size of args in the command encoding.
func argsBytes(args []routing.Field) int {
	var e encoder
	e.fields(args)
	return len(e.buf)
}

// typeOf returns the x-queue-type of canonical args: TypeClassic when
// absent. The value has been checked.
func typeOf(args []routing.Field) QueueType {
	if v, ok := lookupField(args, "x-queue-type"); ok {
		t, _ := parseQueueType(v.Text())
		return t
	}
	return TypeClassic
}

func scopeOf(t QueueType) argScope {
	if t == TypeStream {
		return scopeStream
	}
	return scopeQueue
}

// checkDeclareArgs checks canonical args for an entity of type t named by
// rs ("queue 'q' in vhost '/'") as rabbit_amqqueue:check_declare_arguments
// does: x-queue-type first, then every argument of the type in argSpecs
// order, then arguments that belong to the other kind. Unknown arguments
// are accepted and ignored, as in RabbitMQ, except unknown x-ferry-*
// ones, which are most likely typos. Errors are CodePreconditionFailed.
func checkDeclareArgs(rs string, t QueueType, args []routing.Field) error {
	if v, ok := lookupField(args, "x-queue-type"); ok {
		if e := checkQueueType(v, args); e != "" {
			return invalidArg("x-queue-type", rs, e)
		}
	}
	scope := scopeOf(t)
	for i := range argSpecs {
		s := &argSpecs[i]
		v, ok := lookupField(args, s.key)
		if !ok || s.scope&scope == 0 {
			continue
		}
		if e := s.check(v, args); e != "" {
			return invalidArg(s.key, rs, e)
		}
	}
	for _, f := range args {
		s, known := specByKey[f.Key]
		switch {
		case known && s.scope&scope == 0:
			return base.Errorf(base.CodePreconditionFailed, "invalid arg '%s' for %s of queue type %s", f.Key, rs, t)
		case !known && strings.HasPrefix(f.Key, "x-ferry-"):
			return invalidArg(f.Key, rs, "unknown_ferry_argument")
		}
	}
	return nil
}

func invalidArg(key, rs, reason string) error {
	return base.Errorf(base.CodePreconditionFailed, "invalid arg '%s' for %s: %s", key, rs, reason)
}

// defaultQueueSettings is a queue declared without arguments.
func defaultQueueSettings() queueSettings {
	return queueSettings{cfg: QueueConfig{Queue: queue.DefaultConfig()}}
}

// applyQueueArgs applies checked canonical args of a queue onto s.
func applyQueueArgs(s *queueSettings, args []routing.Field) {
	for _, f := range args {
		if spec, ok := specByKey[f.Key]; ok && spec.applyQueue != nil {
			spec.applyQueue(f.Value, s)
		}
	}
}

// applyStreamArgs applies checked canonical args of a stream onto s.
func applyStreamArgs(s *streamSettings, args []routing.Field) {
	for _, f := range args {
		if spec, ok := specByKey[f.Key]; ok && spec.applyStream != nil {
			spec.applyStream(f.Value, s)
		}
	}
}

// policyValue converts an argument value to the policy value type (only
// integers and strings occur for policy keys once args are checked).
func policyValue(v routing.Value) auth.Value {
	if isInt(v) {
		return auth.Int(v.Int())
	}
	return auth.Str(v.Text())
}

// argValue converts a policy value back to an argument value.
func argValue(v auth.Value) routing.Value {
	if i, ok := v.AsInt(); ok {
		return routing.IntValue(i)
	}
	s, _ := v.AsString()
	return routing.StringValue(s)
}

// checkPolicyDefinition applies Ferry's argument checks to a policy's
// definition (auth has checked types and keys), so that every value a
// policy can contribute to an effective configuration is one a
// declaration could have given. Errors are CodeInvalidArgument.
func checkPolicyDefinition(p *auth.Policy) error {
	keys := make([]string, 0, len(p.Definition))
	for k := range p.Definition {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		spec, ok := specByPolicyKey[k]
		if !ok {
			return base.Errorf(base.CodeNotSupported, "policy '%s' in vhost '%s': key '%s' is not supported by Ferry",
				p.Name, p.Tenant, k)
		}
		if e := spec.check(argValue(p.Definition[k]), nil); e != "" {
			return base.Errorf(base.CodeInvalidArgument, "invalid policy '%s' in vhost '%s': %s: %s", p.Name, p.Tenant, k, e)
		}
	}
	return nil
}
