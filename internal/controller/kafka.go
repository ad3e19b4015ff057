package controller

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Kafka topic configurations (CreateTopics, AlterConfigs) reach a stream's
// arguments table under their Kafka names, as string values. A stream
// accepts both vocabularies; giving one setting in both is an error.

// kafkaSpec is one supported Kafka topic configuration.
type kafkaSpec struct {
	key string
	// amqpKey is the x-argument setting the same thing, "" if none.
	amqpKey  string
	noEffect bool
	// parse checks a value and stores it in s (nil s: check only). The
	// error is the reason, in Kafka's words.
	parse func(v string, s *streamSettings) error
}

var kafkaSpecs = []kafkaSpec{
	{key: "cleanup.policy", parse: func(v string, _ *streamSettings) error {
		if v == "delete" {
			return nil
		}
		if slices.Contains([]string{"compact", "compact,delete", "delete,compact"}, v) {
			return base.Errorf(base.CodeNotSupported, "cleanup.policy %s: Ferry streams support only delete", v)
		}
		return fmt.Errorf("String must be one of: compact, delete")
	}},
	{key: "max.message.bytes", parse: func(v string, s *streamSettings) error {
		n, err := kafkaInt(v, 1, base.BatchBytesMax)
		if err == nil && s != nil {
			s.cfg.MaxMessageBytes = n
		}
		return err
	}},
	{key: "retention.bytes", amqpKey: "x-max-length-bytes", parse: func(v string, s *streamSettings) error {
		n, err := kafkaUnlimited(v)
		if err == nil && s != nil {
			s.cfg.Partition.RetentionBytes = n
		}
		return err
	}},
	{key: "retention.ms", amqpKey: "x-max-age", parse: func(v string, s *streamSettings) error {
		n, err := kafkaUnlimited(v)
		if err == nil && s != nil {
			s.cfg.Partition.RetentionMs = n
		}
		return err
	}},
	{key: "segment.bytes", amqpKey: "x-stream-max-segment-size-bytes", parse: func(v string, s *streamSettings) error {
		n, err := kafkaInt(v, base.SegmentBytesMin, base.SegmentBytesMax)
		if err == nil && s != nil {
			s.cfg.SegmentBytes = n
		}
		return err
	}},
	{key: "segment.ms", parse: func(v string, s *streamSettings) error {
		n, err := kafkaInt(v, 1, math.MaxInt64)
		if err == nil && s != nil {
			s.cfg.SegmentMs = n
		}
		return err
	}},
	// Accepted so that Kafka tools setting them succeed; see
	// docs/arguments.md for why they change nothing.
	{key: "compression.type", noEffect: true, parse: func(v string, _ *streamSettings) error {
		if !slices.Contains([]string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}, v) {
			return fmt.Errorf("String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")
		}
		return nil
	}},
	{key: "min.insync.replicas", noEffect: true, parse: func(v string, _ *streamSettings) error {
		_, err := kafkaInt(v, 1, base.ControllerReplicationFactorMax)
		return err
	}},
}

var kafkaSpecByKey = func() map[string]*kafkaSpec {
	m := map[string]*kafkaSpec{}
	for i := range kafkaSpecs {
		m[kafkaSpecs[i].key] = &kafkaSpecs[i]
	}
	return m
}()

func kafkaInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("Not a number of type LONG")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("Value must be in [%d, %d]", lo, hi)
	}
	return n, nil
}

// kafkaUnlimited reads a retention: -1 for unlimited (stored as 0, which
// stream.PartitionConfig takes as unlimited), or a positive amount. 0,
// "delete everything at once" in Kafka, is refused: the partition
// configuration cannot say it.
func kafkaUnlimited(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("Not a number of type LONG")
	}
	switch {
	case n == -1:
		return 0, nil
	case n <= 0:
		return 0, fmt.Errorf("Value must be -1 (unlimited) or positive")
	}
	return n, nil
}

// checkKafkaConfigs checks the Kafka-named entries of a stream's canonical
// args. strict refuses names Ferry does not know, as Kafka does (the
// Kafka path); otherwise they are ignored like any unknown argument.
// Errors are CodeInvalidArgument (Kafka's INVALID_CONFIG) or, for a valid
// setting Ferry does not implement, CodeNotSupported.
func checkKafkaConfigs(stream string, args []routing.Field, strict bool) error {
	for _, f := range args {
		if strings.HasPrefix(f.Key, "x-") {
			continue
		}
		spec, ok := kafkaSpecByKey[f.Key]
		if !ok {
			if strict {
				return base.Errorf(base.CodeInvalidArgument, "Unknown topic config name: %s", f.Key)
			}
			continue
		}
		if !isString(f.Value) {
			return base.Errorf(base.CodeInvalidArgument, "Invalid value %s for configuration %s: not a string",
				f.Value, f.Key)
		}
		if err := spec.parse(f.Value.Text(), nil); err != nil {
			if base.CodeOf(err) == base.CodeNotSupported {
				return err
			}
			return base.Errorf(base.CodeInvalidArgument, "Invalid value %s for configuration %s: %v", f.Value.Text(), f.Key, err)
		}
		if spec.amqpKey != "" {
			if _, both := lookupField(args, spec.amqpKey); both {
				return base.Errorf(base.CodeInvalidArgument, "stream '%s': %s and %s set the same thing; give one",
					stream, spec.key, spec.amqpKey)
			}
		}
	}
	return nil
}

// applyKafkaConfigs applies checked Kafka-named entries onto s.
func applyKafkaConfigs(s *streamSettings, args []routing.Field) {
	for _, f := range args {
		if spec, ok := kafkaSpecByKey[f.Key]; ok {
			err := spec.parse(f.Value.Text(), s)
			base.Assert(err == nil, "Kafka config %s=%q was checked but does not parse: %v", f.Key, f.Value.Text(), err)
		}
	}
}
