package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func init() { addCommand(newTraceCommand) }

func newTraceCommand() *cobra.Command {
	var o *clientOpts
	var enable, disable string
	c := &cobra.Command{
		Use:   "trace [MESSAGE_ID]",
		Short: "Show a message's history, or turn history recording on or off",
		Long: `Show the recorded history of a message by its message id: published, routed,
enqueued, delivered (to which consumer, which attempt), acked, nacked with a
reason, expired, dead-lettered, deduplicated. Histories are recorded only for
exchanges, queues and streams with tracing on (--enable), on the node that saw
the events, for the most recent events (a bounded store).` + clientEnvHelp,
		Example: `  # Record the history of messages through the queue orders
  ferry trace --enable orders

  # Show the history of the message with id order-1234
  ferry trace order-1234

  # Stop recording
  ferry trace --disable orders`,
		GroupID: "admin",
		Args: func(c *cobra.Command, args []string) error {
			if (enable != "" || disable != "") == (len(args) == 1) || len(args) > 1 {
				return &usageError{fmt.Errorf("give a message id, or --enable/--disable an entity\nRun 'ferry trace --help' for usage.")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.checkOutput(c, "table", "json"); err != nil {
				return err
			}
			if enable != "" || disable != "" {
				name, on := enable, true
				if disable != "" {
					name, on = disable, false
				}
				if err := o.call(c, "PUT", pathOf("/api/tracing", name), o.tenantQuery(), map[string]bool{"enabled": on}, nil); err != nil {
					return err
				}
				_, err := fmt.Fprintf(c.OutOrStdout(), "tracing of %q is %s\n", name, map[bool]string{true: "on", false: "off"}[on])
				return err
			}
			var tr struct {
				MessageID string           `json:"message_id"`
				Events    []map[string]any `json:"events"`
			}
			if err := o.call(c, "GET", pathOf("/api/trace", args[0]), o.tenantQuery(), nil, &tr); err != nil {
				return err
			}
			if o.output == "json" {
				return printJSON(c.OutOrStdout(), tr)
			}
			var rows [][]string
			for _, e := range tr.Events {
				where := cell(e, "queue")
				if where == "" {
					where = cell(e, "exchange")
				}
				detail := cell(e, "reason")
				if cs := cell(e, "consumer"); cs != "" {
					detail = "consumer " + cs + " attempt " + cell(e, "attempt") + " " + detail
				}
				rows = append(rows, []string{cell(e, "time"), cell(e, "node"), cell(e, "kind"), where, detail})
			}
			fmt.Fprintf(c.OutOrStdout(), "message %s: %s\n", tr.MessageID, strconv.Itoa(len(rows))+" events")
			return table(c.OutOrStdout(), []string{"TIME", "NODE", "EVENT", "WHERE", "DETAIL"}, rows)
		},
	}
	c.Flags().StringVar(&enable, "enable", "", "turn history recording on for this exchange, queue or stream")
	c.Flags().StringVar(&disable, "disable", "", "turn history recording off for this exchange, queue or stream")
	o = addClientFlags(c, "table", "json")
	return c
}
