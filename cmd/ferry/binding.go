package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

func init() { addCommand(newBindingCommand) }

var bindingEntity = &entity{noun: "binding", api: "/api/bindings", group: "client", tenanted: true,
	columns: []column{{"SOURCE", "source"}, {"DESTINATION", "destination"}, {"KIND", "destination_kind"},
		{"ROUTING_KEY", "routing_key"}, {"ARGUMENTS", "arguments"}},
	listFlags: func(c *cobra.Command) func(url.Values) {
		src := c.Flags().String("source", "", "only bindings from this exchange")
		dst := c.Flags().String("destination", "", "only bindings to this queue, stream or exchange")
		return func(q url.Values) {
			if *src != "" {
				q.Set("source", *src)
			}
			if *dst != "" {
				q.Set("destination", *dst)
			}
		}
	}}

// bindingFlags registers the flags naming a binding besides its source
// and destination, and returns the request body builder.
func bindingFlags(c *cobra.Command) func(src, dst string) (map[string]any, error) {
	key := c.Flags().String("key", "", "routing key (a pattern for topic exchanges)")
	kind := c.Flags().String("kind", "queue", "destination kind: queue, stream or exchange")
	args := c.Flags().StringArray("arg", nil, "binding argument key=value (repeatable; headers exchanges match on them)")
	return func(src, dst string) (map[string]any, error) {
		a, err := parseKV("arg", *args, true)
		if err != nil {
			return nil, err
		}
		return map[string]any{"source": src, "destination": dst, "destination_kind": *kind, "routing_key": *key, "arguments": a}, nil
	}
}

func bindingChange(use, short, method, verb, example string) *cobra.Command {
	var o *clientOpts
	var body func(src, dst string) (map[string]any, error)
	c := &cobra.Command{
		Use:     use + " SOURCE DESTINATION",
		Short:   short,
		Long:    short + " between an exchange and a queue, stream or exchange." + clientEnvHelp,
		Example: example,
		Args:    exactArgs(2, "a source exchange and a destination"),
		RunE: func(c *cobra.Command, args []string) error {
			in, err := body(args[0], args[1])
			if err != nil {
				return err
			}
			if err := o.call(c, method, "/api/bindings", o.tenantQuery(), in, nil); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.OutOrStdout(), "%s binding %s -> %s (key %q)\n", verb, args[0], args[1], in["routing_key"])
			return err
		},
	}
	o = addClientFlags(c)
	body = bindingFlags(c)
	return c
}

func newBindingInspectCommand() *cobra.Command {
	var o *clientOpts
	c := &cobra.Command{
		Use:     "inspect SOURCE DESTINATION",
		Short:   "Show the bindings from an exchange to a destination",
		Long:    "Show, as JSON, every binding from the exchange SOURCE to DESTINATION." + clientEnvHelp,
		Example: "  ferry binding inspect events eu-orders",
		Args:    exactArgs(2, "a source exchange and a destination"),
		RunE: func(c *cobra.Command, args []string) error {
			q := o.tenantQuery()
			q.Set("source", args[0])
			q.Set("destination", args[1])
			var items []map[string]any
			if err := o.call(c, "GET", "/api/bindings", q, nil, &items); err != nil {
				return err
			}
			if len(items) == 0 {
				return exitErr(ExitNotFound, fmt.Errorf("no binding from %q to %q in tenant %q; 'ferry binding list' shows them", args[0], args[1], o.tenant))
			}
			return printJSON(c.OutOrStdout(), items)
		},
	}
	o = addClientFlags(c)
	return c
}

func newBindingCommand() *cobra.Command {
	e := bindingEntity
	return e.parent("Manage bindings: list, create, delete, inspect",
		"List, create, delete and inspect bindings, which route messages from an exchange to queues, streams and exchanges."+clientEnvHelp,
		`  ferry binding create events eu-orders --key 'eu.#'
  ferry binding list --source events
  ferry binding delete events eu-orders --key 'eu.#'`,
		e.listCommand("  ferry binding list\n  ferry binding list --source events --destination eu-orders"),
		bindingChange("create", "Create a binding", "POST", "created", `  # Route events with keys starting eu. to the queue eu-orders
  ferry binding create events eu-orders --key 'eu.#'

  # Bind a stream, and an exchange to an exchange
  ferry binding create events clicks --kind stream --key 'click.*'
  ferry binding create events audit --kind exchange`),
		bindingChange("delete", "Delete a binding", "DELETE", "deleted", "  ferry binding delete events eu-orders --key 'eu.#'"),
		newBindingInspectCommand())
}
