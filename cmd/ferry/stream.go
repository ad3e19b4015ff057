package main

import (
	"github.com/spf13/cobra"
)

func init() { addCommand(newStreamCommand) }

var streamEntity = &entity{noun: "stream", api: "/api/streams", group: "client", tenanted: true,
	columns: []column{{"NAME", "name"}, {"RETENTION_MS", "retention_ms"},
		{"RETENTION_BYTES", "retention_bytes"}, {"POLICY", "policy"}}}

func newStreamCommand() *cobra.Command {
	e := streamEntity
	create := e.createCommand("create NAME", `  # A stream with one partition
  ferry stream create clicks

  # Six partitions, keeping a day of data
  ferry stream create clicks --partitions 6 --config retention.ms=86400000`,
		`Create a stream (a Kafka topic): replayable, partitioned, read by offset.
Configs are Kafka's topic configs (retention.ms, retention.bytes,
max.message.bytes, segment.bytes, cleanup.policy).`,
		func(c *cobra.Command) func([]string) (any, error) {
			parts := c.Flags().Int("partitions", 1, "number of partitions")
			cfg := c.Flags().StringArray("config", nil, "topic config key=value (repeatable)")
			return func([]string) (any, error) {
				kv, err := parseKV("config", *cfg, false)
				if err != nil {
					return nil, err
				}
				conf := map[string]string{}
				for k, v := range kv {
					conf[k] = v.(string)
				}
				return map[string]any{"partitions": *parts, "config": conf}, nil
			}
		})
	list := e.listCommand("  ferry stream list\n  ferry stream list -o json")
	return e.parent("Manage streams: list, create, delete, inspect",
		"List, create, delete and inspect streams (partitioned, replayable logs) through the node's HTTP API."+clientEnvHelp,
		`  ferry stream create clicks --partitions 3
  ferry stream list
  ferry stream inspect clicks
  ferry stream delete clicks`,
		list, create,
		e.deleteCommand("  ferry stream delete clicks", nil),
		e.inspectCommand("  ferry stream inspect clicks"))
}
