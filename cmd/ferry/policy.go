package main

import (
	"github.com/spf13/cobra"
)

func init() { addCommand(newPolicyCommand) }

var policyEntity = &entity{noun: "policy", api: "/api/policies", group: "admin", tenanted: true,
	columns: []column{{"NAME", "name"}, {"PATTERN", "pattern"}, {"APPLY_TO", "apply_to"}, {"PRIORITY", "priority"},
		{"DEFINITION", "definition"}}}

func newPolicyCommand() *cobra.Command {
	e := policyEntity
	create := e.createCommand("create NAME", `  # Bound every queue whose name starts with jobs. to 10,000 messages
  ferry policy create job-limits --pattern '^jobs\.' --apply-to queues --definition max-length=10000

  # Keep streams a week
  ferry policy create retention --pattern '.*' --apply-to streams --definition max-age=7D`,
		`Create or replace a policy: its definition applies to the entities of --tenant
whose names match --pattern (RE2). Keys: message-ttl, expires, max-length,
max-length-bytes, delivery-limit, overflow, dead-letter-exchange,
dead-letter-routing-key, alternate-exchange, max-age,
stream-max-segment-size-bytes (docs/arguments.md).`,
		func(c *cobra.Command) func([]string) (any, error) {
			pattern := c.Flags().String("pattern", "", "regular expression matched against entity names")
			applyTo := c.Flags().String("apply-to", "all", "all, queues, streams or exchanges")
			priority := c.Flags().Int("priority", 0, "the highest priority applies when several match")
			def := c.Flags().StringArray("definition", nil, "definition key=value (repeatable)")
			return func([]string) (any, error) {
				d, err := parseKV("definition", *def, true)
				if err != nil {
					return nil, err
				}
				return map[string]any{"pattern": *pattern, "apply_to": *applyTo, "priority": *priority, "definition": d}, nil
			}
		})
	return e.parent("Manage policies: list, create, delete, inspect",
		"List, create, delete and inspect policies (administrators and policymakers)."+clientEnvHelp,
		`  ferry policy create job-limits --pattern '^jobs\.' --definition max-length=10000
  ferry policy list
  ferry policy delete job-limits`,
		e.listCommand("  ferry policy list\n  ferry policy list --tenant staging -o json"), create,
		e.deleteCommand("  ferry policy delete job-limits", nil),
		e.inspectCommand("  ferry policy inspect job-limits"))
}
