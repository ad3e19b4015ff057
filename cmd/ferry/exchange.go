package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

func init() { addCommand(newExchangeCommand) }

var exchangeEntity = &entity{noun: "exchange", api: "/api/exchanges", group: "client", tenanted: true,
	columns: []column{{"NAME", "name"}, {"TYPE", "type"}, {"DURABLE", "durable"}, {"AUTO_DELETE", "auto_delete"},
		{"INTERNAL", "internal"}, {"ARGUMENTS", "arguments"}}}

func newExchangeCommand() *cobra.Command {
	e := exchangeEntity
	create := e.createCommand("create NAME", `  # A topic exchange
  ferry exchange create events --type topic

  # A fanout exchange that sends what it cannot route to the exchange unrouted
  ferry exchange create broadcast --type fanout --arg alternate-exchange=unrouted`,
		`Declare a durable exchange of type direct, fanout, topic or headers. Names
starting with "amq." are reserved.`,
		func(c *cobra.Command) func([]string) (any, error) {
			typ := c.Flags().String("type", "direct", "exchange type: direct, fanout, topic or headers")
			args := c.Flags().StringArray("arg", nil, "argument key=value (repeatable)")
			internal := c.Flags().Bool("internal", false, "only other exchanges may publish to it")
			autoDelete := c.Flags().Bool("auto-delete", false, "delete it when its last binding goes")
			return func([]string) (any, error) {
				a, err := parseKV("arg", *args, true)
				if err != nil {
					return nil, err
				}
				return map[string]any{"type": *typ, "internal": *internal, "auto_delete": *autoDelete, "arguments": a}, nil
			}
		})
	del := e.deleteCommand("  ferry exchange delete events\n  ferry exchange delete events --if-unused", func(c *cobra.Command) func(url.Values) {
		ifUnused := c.Flags().Bool("if-unused", false, "refuse when the exchange has bindings")
		return func(q url.Values) { q.Set("if_unused", fmt.Sprint(*ifUnused)) }
	})
	return e.parent("Manage exchanges: list, create, delete, inspect",
		"List, create, delete and inspect exchanges through the node's HTTP API. amq.default names the default exchange."+clientEnvHelp,
		`  ferry exchange create events --type topic
  ferry exchange list
  ferry exchange inspect amq.topic
  ferry exchange delete events`,
		e.listCommand("  ferry exchange list\n  ferry exchange list -o json"), create, del,
		e.inspectCommand("  ferry exchange inspect events\n  ferry exchange inspect amq.default"))
}
