package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Dry runs of stream administration, for Kafka's validate_only
// (CreateTopics, CreatePartitions, AlterConfigs): the same permission
// check and the same controller command as the real call, applied to a
// copy of the controller state, so the answer is the controller's own
// verdict (names, counts, every configuration value, limits) with nothing
// changed and no rule written twice.

// ValidateDeclareStream answers what DeclareStream(s) would, without
// declaring: CodeConflict for an existing stream or queue of that name,
// the controller's error for anything it refuses, nil otherwise.
func (c *Conn) ValidateDeclareStream(ctx context.Context, s StreamSpec) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityStream, s.Name); err != nil {
		return err
	}
	if _, err := c.b.lookupQueue(c.p.Tenant, s.Name); err == nil {
		return topicExists(s.Name)
	}
	res, err := c.b.dryRunController(&controller.DeclareStream{Now: c.b.nowMs(), Tenant: c.p.Tenant,
		Name: s.Name, Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, Args: configArgs(s.Config)})
	if err != nil {
		return err
	}
	if res.Stream != nil && !res.Created {
		return topicExists(s.Name)
	}
	return nil
}

// ValidateAddPartitions answers what AddPartitions would, without adding.
func (c *Conn) ValidateAddPartitions(ctx context.Context, name string, total int) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityStream, name); err != nil {
		return err
	}
	_, err := c.b.dryRunController(&controller.AddPartitions{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: name, Total: total})
	return err
}

// ValidateAlterStream answers what AlterStream would, without altering.
func (c *Conn) ValidateAlterStream(ctx context.Context, name string, config map[string]string) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityStream, name); err != nil {
		return err
	}
	_, err := c.b.dryRunController(&controller.AlterStream{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: name, Args: configArgs(config)})
	return err
}

// configArgs turns Kafka topic configurations into stream arguments,
// sorted by name: a declare or alter and its validate-only twin send the
// same command, so they meet a bad value in the same order.
func configArgs(config map[string]string) []routing.Field {
	args := make([]routing.Field, 0, len(config))
	for k, v := range config {
		args = append(args, routing.Field{Key: k, Value: routing.StringValue(v)})
	}
	slices.SortFunc(args, func(a, b routing.Field) int { return strings.Compare(a.Key, b.Key) })
	return args
}

// dryRunController applies cmd to a copy of this node's controller state
// and returns the result, changing nothing. The copy costs a snapshot and
// a restore, linear in the metadata (about 90 bytes per entity: a few
// milliseconds for 100,000), which validate-only requests, rare admin
// calls, can afford. The state is this replica's: on a node that does not
// lead the controller it may miss commands still in flight, as any
// validation is a moment's verdict.
func (b *Broker) dryRunController(cmd controller.Command) (controller.Result, error) {
	var snap []byte
	b.ctrl.read(func(c *controller.Controller) { snap = c.Snapshot() })
	copyOf := controller.New(controller.Options{Directory: b.cfg.Directory})
	if err := copyOf.Restore(snap); err != nil {
		return controller.Result{}, err
	}
	res := copyOf.Apply(cmd)
	return res, res.Err
}
