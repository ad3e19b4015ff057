package controller

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
	"github.com/ferry-mq/ferry/internal/stream"
)

// Effective configuration: an entity's own (checked) arguments over the
// defaults, then the values of the policy that matches it, merged by
// auth.PolicySet.Effective (limits: the lower wins; settings: the
// argument wins). Every value a policy can contribute passed the same
// checks as an argument (checkPolicyDefinition), so building the
// configuration cannot fail.

// effectiveQueue returns the configuration of the queue name of tenant
// with canonical, checked args, and the name of the policy applied.
// policies may be nil (no policies).
func effectiveQueue(policies *auth.PolicySet, tenant, name string, args []routing.Field) (QueueConfig, string) {
	s := defaultQueueSettings()
	applyQueueArgs(&s, args)
	policy := ""
	if policies != nil {
		own := ownPolicyValues(args, scopeQueue)
		eff := policies.Effective(tenant, auth.ResourceQueue, name, own)
		policy = eff.Policy
		for _, k := range sortedKeys(eff.Values) {
			if spec := specByPolicyKey[k]; spec != nil && spec.applyQueue != nil {
				spec.applyQueue(argValue(eff.Values[k]), &s)
			}
		}
	}
	s.cfg.Queue.DeadLetterTarget = FormatDeadLetterTarget(s.cfg.DeadLetter)
	if base.InvariantsEnabled {
		err := s.cfg.Queue.Validate()
		base.Assert(err == nil, "effective config of queue %q in %q is invalid: %v", name, tenant, err)
	}
	return s.cfg, policy
}

// defaultStreamConfig is a stream's configuration before its arguments:
// Kafka's topic defaults for streams created through DeclareStream,
// RabbitMQ's stream defaults for those declared with x-queue-type stream.
func defaultStreamConfig(fromKafka bool) StreamConfig {
	if fromKafka {
		return StreamConfig{
			Partition:       defaultPartitionConfig(base.ControllerKafkaRetentionDefault.Milliseconds()),
			SegmentBytes:    base.SegmentBytesDefault,
			SegmentMs:       base.SegmentAgeDefault.Milliseconds(),
			MaxMessageBytes: base.ControllerKafkaMessageBytesDefault,
		}
	}
	return StreamConfig{
		Partition:       defaultPartitionConfig(0),
		SegmentBytes:    base.ControllerStreamSegmentBytesDefault,
		SegmentMs:       base.SegmentAgeDefault.Milliseconds(),
		MaxMessageBytes: base.AMQPMessageBytesMax,
	}
}

// effectiveStream returns the configuration of a stream with canonical,
// checked args, and the name of the policy applied.
func effectiveStream(policies *auth.PolicySet, tenant, name string, fromKafka bool, args []routing.Field) (StreamConfig, string) {
	s := streamSettings{cfg: defaultStreamConfig(fromKafka)}
	applyStreamArgs(&s, args)
	applyKafkaConfigs(&s, args)
	if policies == nil {
		return s.cfg, ""
	}
	own := ownPolicyValues(args, scopeStream)
	// Kafka's names for the policy keys. Retention by age is merged here
	// rather than by auth, because max-age has no unit finer than a second
	// and retention.ms is in milliseconds: the shorter wins, as auth's
	// rule for max-age says.
	if _, ok := lookupField(args, "retention.bytes"); ok && s.cfg.Partition.RetentionBytes > 0 {
		own["max-length-bytes"] = auth.Int(s.cfg.Partition.RetentionBytes)
	}
	if _, ok := lookupField(args, "segment.bytes"); ok {
		own["stream-max-segment-size-bytes"] = auth.Int(s.cfg.SegmentBytes)
	}
	delete(own, "max-age")
	eff := policies.Effective(tenant, auth.ResourceStream, name, own)
	for _, k := range sortedKeys(eff.Values) {
		spec := specByPolicyKey[k]
		if spec == nil || spec.applyStream == nil {
			continue
		}
		if k == "max-age" {
			text, _ := eff.Values[k].AsString()
			ms, err := auth.ParseMaxAge(text)
			base.Assert(err == nil, "policy max-age %q was checked but does not parse: %v", text, err)
			if cur := s.cfg.Partition.RetentionMs; cur <= 0 || ms < cur {
				s.cfg.Partition.RetentionMs = ms
			}
			continue
		}
		spec.applyStream(argValue(eff.Values[k]), &s)
	}
	return s.cfg, eff.Policy
}

// ownPolicyValues returns the entity's own arguments that a policy key of
// scope also sets, keyed by policy key.
func ownPolicyValues(args []routing.Field, scope argScope) map[string]auth.Value {
	own := map[string]auth.Value{}
	for _, f := range args {
		if spec := specByKey[f.Key]; spec != nil && spec.policyKey != "" && spec.scope&scope != 0 {
			own[spec.policyKey] = policyValue(f.Value)
		}
	}
	return own
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// defaultPartitionConfig is a partition's configuration with retention by
// age retentionMs (0: unlimited) and everything else at its default.
func defaultPartitionConfig(retentionMs int64) stream.PartitionConfig {
	return stream.PartitionConfig{RetentionMs: retentionMs}
}
