package controller

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Dump returns a canonical, human-readable listing of the whole state, in
// snapshot order: tests compare it and operators read it. Built-in
// exchanges are left out.
func (c *Controller) Dump() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "bootstrapped %v, now %d, next group %d, %d groups\n", c.bootstrapped, c.nowMs, c.nextGroup, c.groups)
	for _, n := range c.Nodes() {
		fmt.Fprintf(&sb, "node %d %q %s\n", n.ID, n.Addr, n.State)
	}
	for i, p := range c.coordinators {
		fmt.Fprintf(&sb, "coordinator %d: %s\n", i, p)
	}
	for _, name := range c.Tenants() {
		c.tenants[name].dump(&sb)
	}
	for _, name := range sortedKeys(c.users) {
		c.users[name].dump(&sb)
	}
	return sb.String()
}

func (t *tenant) dump(sb *strings.Builder) {
	fmt.Fprintf(sb, "vhost %q\n", t.name)
	for _, name := range sortedKeys(t.policies) {
		p := t.policies[name]
		fmt.Fprintf(sb, "  policy %q pattern %q apply-to %s priority %d %s\n", p.Name, p.Pattern, p.ApplyTo, p.Priority,
			formatDefinition(p.Definition))
	}
	for line := range strings.Lines(t.routing.Dump()) {
		if strings.HasPrefix(line, "vhost ") || strings.HasPrefix(line, "queue ") || strings.HasPrefix(line, "stream ") {
			continue // the vhost is above; queues and streams below
		}
		if name, ok := strings.CutPrefix(line, "exchange "); ok {
			if q, err := strconv.QuotedPrefix(name); err == nil {
				if n, _ := strconv.Unquote(q); isBuiltinExchange(n) {
					continue
				}
			}
		}
		sb.WriteString("  " + line)
	}
	for _, name := range sortedKeys(t.queues) {
		sb.WriteString(t.queues[name].describe())
	}
	for _, name := range sortedKeys(t.streams) {
		sb.WriteString(t.streams[name].describe())
	}
}

// describe writes a queue on a few indented lines.
func (q *queueEntity) describe() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "  queue %q %s", q.name, q.typ)
	for _, f := range []struct {
		on   bool
		name string
	}{{q.durable, "durable"}, {q.autoDelete, "auto-delete"}, {q.serverNamed, "server-named"}} {
		if f.on {
			sb.WriteString(" " + f.name)
		}
	}
	if q.exclusive {
		fmt.Fprintf(&sb, " exclusive to %q", q.owner)
	}
	fmt.Fprintf(&sb, " %s\n", q.place)
	if len(q.args) > 0 {
		sb.WriteString("    args " + FormatArgs(q.args) + "\n")
	}
	if cfg := FormatQueueConfig(q.cfg); cfg != "" || q.policy != "" {
		fmt.Fprintf(&sb, "    config%s%s\n", policySuffix(q.policy), cfg)
	}
	return sb.String()
}

func (s *streamEntity) describe() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "  stream %q", s.name)
	if s.fromKafka {
		sb.WriteString(" kafka")
	}
	fmt.Fprintf(&sb, " %d partitions\n", len(s.partitions))
	for i, p := range s.partitions {
		fmt.Fprintf(&sb, "    partition %d: %s\n", i, p)
	}
	if len(s.args) > 0 {
		sb.WriteString("    args " + FormatArgs(s.args) + "\n")
	}
	fmt.Fprintf(&sb, "    config%s%s\n", policySuffix(s.policy), FormatStreamConfig(s.cfg))
	return sb.String()
}

func policySuffix(p string) string {
	if p == "" {
		return ""
	}
	return fmt.Sprintf(" (policy %q)", p)
}

func (u *user) dump(sb *strings.Builder) {
	fmt.Fprintf(sb, "user %q", u.name)
	if len(u.tags) > 0 {
		tags := make([]string, len(u.tags))
		for i, t := range u.tags {
			tags[i] = string(t)
		}
		fmt.Fprintf(sb, " tags %s", strings.Join(tags, ","))
	}
	if u.creds.PasswordHash != "" {
		sb.WriteString(" password")
	}
	if len(u.creds.ScramSHA256.StoredKey) > 0 {
		sb.WriteString(" scram-sha-256")
	}
	if len(u.creds.ScramSHA512.StoredKey) > 0 {
		sb.WriteString(" scram-sha-512")
	}
	sb.WriteByte('\n')
	for _, tn := range sortedKeys(u.perms) {
		p := u.perms[tn]
		fmt.Fprintf(sb, "  permission %q configure %q write %q read %q\n", tn, p.Configure, p.Write, p.Read)
	}
}

// FormatArgs writes an arguments table as {key: value, ...}, values as
// routing.Value.String writes them.
func FormatArgs(args []routing.Field) string {
	parts := make([]string, len(args))
	for i, f := range args {
		parts[i] = strconv.Quote(f.Key) + ": " + f.Value.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func formatDefinition(def map[string]auth.Value) string {
	keys := sortedKeys(def)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + def[k].String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// FormatQueueConfig lists, as " name=value" pairs, what in cfg differs
// from a queue declared without arguments and without a policy.
func FormatQueueConfig(cfg QueueConfig) string {
	d := defaultQueueSettings().cfg
	var sb strings.Builder
	add := func(differs bool, name string, v any) {
		if differs {
			fmt.Fprintf(&sb, " %s=%v", name, v)
		}
	}
	q, dq := cfg.Queue, d.Queue
	add(q.MaxPriority != dq.MaxPriority, "max-priority", q.MaxPriority)
	add(q.MaxLength != dq.MaxLength, "max-length", q.MaxLength)
	add(q.MaxLengthBytes != dq.MaxLengthBytes, "max-length-bytes", q.MaxLengthBytes)
	add(q.Overflow != dq.Overflow, "overflow", q.Overflow)
	add(q.MessageTTLms != dq.MessageTTLms, "message-ttl-ms", q.MessageTTLms)
	add(q.ExpiresMs != dq.ExpiresMs, "expires-ms", q.ExpiresMs)
	add(q.AckTimeoutMs != dq.AckTimeoutMs, "ack-timeout-ms", q.AckTimeoutMs)
	add(q.DeadLetterTarget != dq.DeadLetterTarget, "dead-letter", strconv.Quote(q.DeadLetterTarget))
	add(q.SingleActiveConsumer != dq.SingleActiveConsumer, "single-active-consumer", q.SingleActiveConsumer)
	add(q.DedupeWindowMs != dq.DedupeWindowMs, "dedupe-window-ms", q.DedupeWindowMs)
	add(q.Retry.DeliveryLimit != dq.Retry.DeliveryLimit, "delivery-limit", q.Retry.DeliveryLimit)
	add(q.Retry.Default != dq.Retry.Default, "backoff", formatSchedule(q.Retry.Default))
	for _, r := range q.Retry.Reasons {
		fmt.Fprintf(&sb, " retry[%s]=%s", r.Reason, formatSchedule(r.Schedule))
	}
	add(cfg.OrderingByKey != d.OrderingByKey, "ordering-key", cfg.OrderingByKey)
	if cfg.DeadLetter.HasRoutingKey && !cfg.DeadLetter.Set {
		fmt.Fprintf(&sb, " dead-letter-routing-key=%q(unused)", cfg.DeadLetter.RoutingKey)
	}
	return sb.String()
}

func formatSchedule(s queue.Schedule) string {
	out := s.Kind.String()
	if s.DelayMs != 0 || s.MaxDelayMs != 0 {
		out += fmt.Sprintf("/%d", s.DelayMs)
	}
	if s.MaxDelayMs != 0 {
		out += fmt.Sprintf("/%d", s.MaxDelayMs)
	}
	if s.Jitter {
		out += "/jitter"
	}
	return out
}

// FormatStreamConfig lists a stream configuration as " name=value" pairs.
func FormatStreamConfig(cfg StreamConfig) string {
	return fmt.Sprintf(" retention-bytes=%d retention-ms=%d segment-bytes=%d segment-ms=%d max-message-bytes=%d",
		cfg.Partition.RetentionBytes, cfg.Partition.RetentionMs, cfg.SegmentBytes, cfg.SegmentMs, cfg.MaxMessageBytes)
}
