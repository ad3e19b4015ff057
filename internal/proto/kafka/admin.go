package kafka

import (
	"context"
	"strconv"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// Config resource types of DescribeConfigs and the AlterConfigs APIs.
const (
	resourceTopic  = 2
	resourceBroker = 4
)

// Config sources and types as DescribeConfigs reports them.
const (
	configSourceDynamicTopic = 1
	configSourceDefault      = 5

	configTypeString = 2
	configTypeInt    = 3
	configTypeLong   = 5
	configTypeList   = 7
)

// configTypes are the types of the topic configurations Ferry supports
// (controller/kafka.go lists them and their ranges).
var configTypes = map[string]int8{
	"cleanup.policy":      configTypeList,
	"compression.type":    configTypeString,
	"max.message.bytes":   configTypeInt,
	"min.insync.replicas": configTypeInt,
	"retention.bytes":     configTypeLong,
	"retention.ms":        configTypeLong,
	"segment.bytes":       configTypeInt,
	"segment.ms":          configTypeLong,
}

// adminCtx bounds an admin call by the client's timeout and
// KafkaAdminTimeoutMax.
func (c *conn) adminCtx(timeoutMs int32) (context.Context, context.CancelFunc) {
	d := base.KafkaAdminTimeoutMax
	if timeoutMs > 0 {
		d = min(d, time.Duration(timeoutMs)*time.Millisecond)
	}
	return context.WithTimeout(c.ctx, d)
}

func handleCreateTopics(c *conn, r *request) error {
	req := new(protocol.CreateTopicsRequest)
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	ctx, cancel := c.adminCtx(req.TimeoutMs)
	defer cancel()
	var resp protocol.CreateTopicsResponse
	resp.Default()
	seen := map[string]int{}
	for _, t := range req.Topics {
		seen[t.Name]++
	}
	for _, t := range req.Topics {
		res := c.createTopic(ctx, r.hdr.APIVersion, t, seen[t.Name] > 1, req.ValidateOnly)
		resp.Topics = append(resp.Topics, res)
	}
	c.respond(r, &resp)
	return nil
}

func (c *conn) createTopic(ctx context.Context, v int16, t protocol.CreateTopicsRequestCreatableTopic, dup, validateOnly bool) protocol.CreateTopicsResponseCreatableTopicResult {
	var res protocol.CreateTopicsResponseCreatableTopicResult
	res.Default()
	res.Name = t.Name
	fail := func(code protocol.ErrorCode, msg string) protocol.CreateTopicsResponseCreatableTopicResult {
		res.ErrorCode = int16(code)
		if msg != "" {
			res.ErrorMessage = &msg
		}
		return res
	}
	switch {
	case dup:
		return fail(protocol.ErrorCodeInvalidRequest, "the topic is named more than once in the request")
	case !validTopicName(t.Name):
		return fail(protocol.ErrorCodeInvalidTopicException, "topic names are 1 to 249 characters of [a-zA-Z0-9._-], not '.' or '..'")
	case len(t.Assignments) > 0:
		return fail(protocol.ErrorCodeInvalidReplicaAssignment, "Ferry places replicas itself: manual assignments are not supported")
	case t.NumPartitions == 0 || t.NumPartitions < -1:
		return fail(protocol.ErrorCodeInvalidPartitions, "the number of partitions must be positive, or -1 for the default")
	case t.ReplicationFactor == 0 || t.ReplicationFactor < -1:
		return fail(protocol.ErrorCodeInvalidReplicationFactor, "the replication factor must be positive, or -1 for the default")
	}
	spec := TopicSpec{Name: t.Name, Partitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor, Configs: map[string]string{}}
	for _, cfg := range t.Configs {
		if cfg.Value == nil {
			return fail(protocol.ErrorCodeInvalidConfig, "null value for configuration "+cfg.Name)
		}
		spec.Configs[cfg.Name] = *cfg.Value
	}
	if err := c.sess.Authorize(auth.ActionConfigure, t.Name); err != nil {
		return fail(errorCode(err, scopeCreate), err.Error())
	}
	info, err := c.sess.CreateTopic(ctx, spec, validateOnly)
	if err != nil {
		return fail(errorCode(err, scopeCreate), err.Error())
	}
	if v >= 7 {
		res.TopicId = info.ID
	}
	if v >= 5 {
		res.NumPartitions = int32(len(info.Partitions))
		if len(info.Partitions) > 0 {
			res.ReplicationFactor = int16(len(info.Partitions[0].Replicas))
		}
		if entries, err := c.sess.TopicConfig(ctx, t.Name); err == nil && !validateOnly {
			res.Configs = []protocol.CreateTopicsResponseCreatableTopicConfigs{}
			for _, e := range entries {
				src := int8(configSourceDynamicTopic)
				if e.Default {
					src = configSourceDefault
				}
				res.Configs = append(res.Configs, protocol.CreateTopicsResponseCreatableTopicConfigs{
					Name: e.Name, Value: &e.Value, ReadOnly: e.ReadOnly, ConfigSource: src, IsSensitive: e.Sensitive})
			}
		}
	}
	return res
}

func handleDeleteTopics(c *conn, r *request) error {
	var req protocol.DeleteTopicsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	ctx, cancel := c.adminCtx(req.TimeoutMs)
	defer cancel()
	type target struct {
		name string
		id   protocol.UUID
	}
	var targets []target
	if v >= 6 {
		var byID map[protocol.UUID]string
		for _, t := range req.Topics {
			if t.Name != nil {
				targets = append(targets, target{name: *t.Name, id: t.TopicId})
				continue
			}
			if byID == nil {
				byID = map[protocol.UUID]string{}
				for _, info := range c.sess.Topics(nil) {
					byID[info.ID] = info.Name
				}
			}
			targets = append(targets, target{name: byID[t.TopicId], id: t.TopicId})
		}
	} else {
		for _, name := range req.TopicNames {
			targets = append(targets, target{name: name})
		}
	}
	var resp protocol.DeleteTopicsResponse
	resp.Default()
	for _, t := range targets {
		var dr protocol.DeleteTopicsResponseDeletableTopicResult
		dr.Default()
		var err error
		switch {
		case t.name == "":
			err = kafkaErr(protocol.ErrorCodeUnknownTopicId, "")
		default:
			if err = c.sess.Authorize(auth.ActionConfigure, t.name); err == nil {
				err = c.sess.DeleteTopic(ctx, t.name)
			}
		}
		dr.ErrorCode = int16(errorCode(err, scopeAdmin))
		if v >= 5 && err != nil {
			dr.ErrorMessage = errorMessage(err)
		}
		if t.name != "" {
			name := t.name
			dr.Name = &name
		}
		if v >= 6 {
			dr.TopicId = t.id
			if t.id == (protocol.UUID{}) && err == nil {
				if infos := c.sess.Topics([]string{t.name}); len(infos) == 1 {
					dr.TopicId = infos[0].ID
				}
			}
		}
		resp.Responses = append(resp.Responses, dr)
	}
	c.respond(r, &resp)
	return nil
}

func handleCreatePartitions(c *conn, r *request) error {
	var req protocol.CreatePartitionsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	ctx, cancel := c.adminCtx(req.TimeoutMs)
	defer cancel()
	var resp protocol.CreatePartitionsResponse
	resp.Default()
	for _, t := range req.Topics {
		res := protocol.CreatePartitionsResponseCreatePartitionsTopicResult{Name: t.Name}
		var err error
		switch {
		case len(t.Assignments) > 0:
			err = kafkaErr(protocol.ErrorCodeInvalidReplicaAssignment, "Ferry places replicas itself: manual assignments are not supported")
		default:
			if err = c.sess.Authorize(auth.ActionConfigure, t.Name); err == nil {
				err = c.sess.AddPartitions(ctx, t.Name, t.Count, req.ValidateOnly)
			}
		}
		if err != nil && base.CodeOf(err) == base.CodeInvalidArgument {
			err = &KafkaError{Code: protocol.ErrorCodeInvalidPartitions, Msg: err.Error()}
		}
		res.ErrorCode = int16(errorCode(err, scopeAdmin))
		res.ErrorMessage = errorMessage(err)
		resp.Results = append(resp.Results, res)
	}
	c.respond(r, &resp)
	return nil
}

func handleDescribeConfigs(c *conn, r *request) error {
	var req protocol.DescribeConfigsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	ctx, cancel := c.adminCtx(0)
	defer cancel()
	var resp protocol.DescribeConfigsResponse
	resp.Default()
	for _, res := range req.Resources {
		out := protocol.DescribeConfigsResponseDescribeConfigsResult{ResourceType: res.ResourceType, ResourceName: res.ResourceName,
			Configs: []protocol.DescribeConfigsResponseDescribeConfigsResourceResult{}}
		var entries []ConfigEntry
		var err error
		switch res.ResourceType {
		case resourceTopic:
			if err = c.sess.Authorize(auth.ActionRead, res.ResourceName); err == nil {
				entries, err = c.sess.TopicConfig(ctx, res.ResourceName)
			}
		case resourceBroker:
			// Ferry's broker settings are not Kafka broker configs: an
			// existing broker has none to describe.
			if res.ResourceName != "" && res.ResourceName != strconv.Itoa(int(c.sess.Self())) {
				err = kafkaErr(protocol.ErrorCodeInvalidRequest, "describe the configs of the broker you are connected to")
			}
		default:
			err = kafkaErr(protocol.ErrorCodeInvalidRequest, "Ferry describes topic and broker configs only")
		}
		out.ErrorCode = int16(errorCode(err, scopeAdmin))
		out.ErrorMessage = errorMessage(err)
		for _, e := range entries {
			if res.ConfigurationKeys != nil && !contains(res.ConfigurationKeys, e.Name) {
				continue
			}
			out.Configs = append(out.Configs, describeEntry(v, e))
		}
		resp.Results = append(resp.Results, out)
	}
	c.respond(r, &resp)
	return nil
}

func describeEntry(v int16, e ConfigEntry) protocol.DescribeConfigsResponseDescribeConfigsResourceResult {
	var d protocol.DescribeConfigsResponseDescribeConfigsResourceResult
	d.Default()
	value := e.Value
	d.Name, d.Value, d.ReadOnly, d.IsSensitive = e.Name, &value, e.ReadOnly, e.Sensitive
	if v == 0 {
		d.IsDefault = e.Default
	} else {
		d.ConfigSource = configSourceDynamicTopic
		if e.Default {
			d.ConfigSource = configSourceDefault
		}
		d.Synonyms = []protocol.DescribeConfigsResponseDescribeConfigsSynonym{}
	}
	if v >= 3 {
		d.ConfigType = configTypes[e.Name]
	}
	return d
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func handleAlterConfigs(c *conn, r *request) error {
	var req protocol.AlterConfigsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	ctx, cancel := c.adminCtx(0)
	defer cancel()
	var resp protocol.AlterConfigsResponse
	resp.Default()
	for _, res := range req.Resources {
		out := protocol.AlterConfigsResponseAlterConfigsResourceResponse{ResourceType: res.ResourceType, ResourceName: res.ResourceName}
		var err error
		if res.ResourceType != resourceTopic {
			err = kafkaErr(protocol.ErrorCodeInvalidRequest, "Ferry alters topic configs only")
		} else if err = c.sess.Authorize(auth.ActionConfigure, res.ResourceName); err == nil {
			set := map[string]string{}
			for _, cfg := range res.Configs {
				if cfg.Value == nil {
					err = kafkaErr(protocol.ErrorCodeInvalidConfig, "null value for configuration "+cfg.Name)
					break
				}
				set[cfg.Name] = *cfg.Value
			}
			if err == nil {
				err = c.sess.AlterTopicConfig(ctx, res.ResourceName, set, req.ValidateOnly)
			}
		}
		out.ErrorCode, out.ErrorMessage = int16(errorCode(err, scopeAdmin)), errorMessage(err)
		resp.Responses = append(resp.Responses, out)
	}
	c.respond(r, &resp)
	return nil
}

// IncrementalAlterConfigs operations.
const (
	opSet      = 0
	opDelete   = 1
	opAppend   = 2
	opSubtract = 3
)

func handleIncrementalAlterConfigs(c *conn, r *request) error {
	var req protocol.IncrementalAlterConfigsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	ctx, cancel := c.adminCtx(0)
	defer cancel()
	var resp protocol.IncrementalAlterConfigsResponse
	resp.Default()
	for _, res := range req.Resources {
		out := protocol.IncrementalAlterConfigsResponseAlterConfigsResourceResponse{ResourceType: res.ResourceType, ResourceName: res.ResourceName}
		var err error
		if res.ResourceType != resourceTopic {
			err = kafkaErr(protocol.ErrorCodeInvalidRequest, "Ferry alters topic configs only")
		} else if err = c.sess.Authorize(auth.ActionConfigure, res.ResourceName); err == nil {
			err = c.incrementalAlter(ctx, res, req.ValidateOnly)
		}
		out.ErrorCode, out.ErrorMessage = int16(errorCode(err, scopeAdmin)), errorMessage(err)
		resp.Responses = append(resp.Responses, out)
	}
	c.respond(r, &resp)
	return nil
}

// incrementalAlter reads the topic's set configurations, applies the
// operations and writes the result back. The read and the write are two
// steps: a concurrent alteration of the same topic between them is lost
// (Kafka's controller serialises them; docs/kafka.md lists this).
func (c *conn) incrementalAlter(ctx context.Context, res protocol.IncrementalAlterConfigsRequestAlterConfigsResource, validateOnly bool) error {
	entries, err := c.sess.TopicConfig(ctx, res.ResourceName)
	if err != nil {
		return err
	}
	set := map[string]string{}
	for _, e := range entries {
		if !e.Default {
			set[e.Name] = e.Value
		}
	}
	for _, cfg := range res.Configs {
		switch cfg.ConfigOperation {
		case opSet:
			if cfg.Value == nil {
				return kafkaErr(protocol.ErrorCodeInvalidConfig, "null value for configuration "+cfg.Name)
			}
			set[cfg.Name] = *cfg.Value
		case opDelete:
			delete(set, cfg.Name)
		case opAppend, opSubtract:
			if configTypes[cfg.Name] != configTypeList {
				return kafkaErr(protocol.ErrorCodeInvalidConfig, "APPEND and SUBTRACT apply to list configurations only: "+cfg.Name)
			}
			// cleanup.policy is the only list, and "delete" its only
			// supported value: appending it sets it, subtracting it
			// leaves an empty list, which Ferry cannot honour.
			if cfg.Value == nil || *cfg.Value != "delete" || cfg.ConfigOperation == opSubtract {
				return kafkaErr(protocol.ErrorCodeInvalidConfig, "cleanup.policy supports delete only")
			}
			set[cfg.Name] = "delete"
		default:
			return kafkaErr(protocol.ErrorCodeInvalidRequest, "unknown config operation "+strconv.Itoa(int(cfg.ConfigOperation)))
		}
	}
	return c.sess.AlterTopicConfig(ctx, res.ResourceName, set, validateOnly)
}
