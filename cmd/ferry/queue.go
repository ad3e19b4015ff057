package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

func init() { addCommand(newQueueCommand) }

var queueEntity = &entity{noun: "queue", api: "/api/queues", group: "client", tenanted: true,
	columns: []column{{"NAME", "name"}, {"TYPE", "type"}, {"READY", "stats.ready"}, {"UNACKED", "stats.unacked"},
		{"DELAYED", "stats.delayed"}, {"CONSUMERS", "stats.consumers"}, {"PUBLISH/S", "stats.rates.publish_per_sec"},
		{"DELIVER/S", "stats.rates.deliver_per_sec"}, {"POLICY", "policy"}},
	listFlags: func(c *cobra.Command) func(url.Values) {
		prefix := c.Flags().String("prefix", "", "only queues whose name starts with this")
		return func(q url.Values) {
			q.Set("stats", "true")
			if *prefix != "" {
				q.Set("prefix", *prefix)
			}
		}
	}}

func newQueueCommand() *cobra.Command {
	e := queueEntity
	create := e.createCommand("create NAME", `  # A durable queue
  ferry queue create orders

  # A queue bounded to 10,000 messages that dead-letters to the exchange dlx
  ferry queue create jobs --arg x-max-length=10000 --arg x-dead-letter-exchange=dlx`,
		`Declare a durable queue. Arguments are RabbitMQ's x-* and Ferry's x-ferry-*
(docs/arguments.md); integer values are sent as numbers. Declaring a queue that
exists with the same settings succeeds; with other settings it fails (exit 1,
precondition_failed).`,
		func(c *cobra.Command) func([]string) (any, error) {
			typ := c.Flags().String("type", "", "queue type: classic or quorum (both replicated in Ferry), or stream")
			args := c.Flags().StringArray("arg", nil, "argument key=value (repeatable)")
			autoDelete := c.Flags().Bool("auto-delete", false, "delete the queue when its last consumer goes")
			return func([]string) (any, error) {
				a, err := parseKV("arg", *args, true)
				if err != nil {
					return nil, err
				}
				return map[string]any{"type": *typ, "auto_delete": *autoDelete, "arguments": a}, nil
			}
		})
	del := e.deleteCommand(`  ferry queue delete orders
  # Only when it is empty and nobody consumes from it
  ferry queue delete orders --if-empty --if-unused`, func(c *cobra.Command) func(url.Values) {
		ifEmpty := c.Flags().Bool("if-empty", false, "refuse when the queue holds messages")
		ifUnused := c.Flags().Bool("if-unused", false, "refuse when the queue has consumers")
		return func(q url.Values) {
			q.Set("if_empty", fmt.Sprint(*ifEmpty))
			q.Set("if_unused", fmt.Sprint(*ifUnused))
		}
	})
	return e.parent("Manage queues: list, create, delete, inspect, purge",
		"List, create, delete, inspect and purge queues through the node's HTTP API."+clientEnvHelp,
		`  ferry queue list
  ferry queue create orders --arg x-max-length=1000
  ferry queue inspect orders
  ferry queue purge orders
  ferry queue delete orders`,
		e.listCommand("  ferry queue list\n  ferry queue list --prefix jobs. -o json"),
		create, del,
		e.inspectCommand("  ferry queue inspect orders\n  ferry queue inspect orders --tenant staging"),
		newQueuePurgeCommand())
}

func newQueuePurgeCommand() *cobra.Command {
	var o *clientOpts
	c := &cobra.Command{
		Use:     "purge NAME",
		Short:   "Discard a queue's ready messages",
		Long:    "Discard every ready message of a queue (messages delivered and not yet acknowledged stay)." + clientEnvHelp,
		Example: "  ferry queue purge orders",
		Args:    exactArgs(1, "the queue's name"),
		RunE: func(c *cobra.Command, args []string) error {
			var res struct {
				Messages uint64 `json:"messages"`
			}
			if err := o.call(c, "DELETE", pathOf("/api/queues", args[0])+"/messages", o.tenantQuery(), nil, &res); err != nil {
				return err
			}
			_, err := fmt.Fprintf(c.OutOrStdout(), "purged %d messages from queue %q\n", res.Messages, args[0])
			return err
		},
	}
	o = addClientFlags(c)
	return c
}
