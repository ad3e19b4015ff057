package main

import (
	"net/url"

	"github.com/spf13/cobra"
)

func init() { addCommand(newPermissionCommand) }

var permissionEntity = &entity{noun: "permission", api: "/api/permissions", group: "admin", tenanted: true,
	columns: []column{{"USER", "user"}, {"TENANT", "tenant"}, {"CONFIGURE", "configure"}, {"WRITE", "write"}, {"READ", "read"}},
	listFlags: func(c *cobra.Command) func(url.Values) {
		user := c.Flags().String("of", "", "only this user's permissions")
		all := c.Flags().Bool("all-tenants", false, "every tenant's permissions, not only --tenant's")
		return func(q url.Values) {
			if *all {
				q.Del("tenant")
			}
			if *user != "" {
				q.Set("user", *user)
			}
		}
	}}

func newPermissionCommand() *cobra.Command {
	e := permissionEntity
	create := e.createCommand("create USER", `  # Full rights in the default tenant
  ferry permission create billing --configure '.*' --write '.*' --read '.*'

  # Read-only on queues starting with reports. in the tenant staging
  ferry permission create analyst --tenant staging --read '^reports\.'`,
		`Give USER a permission in --tenant: three regular expressions (RE2,
unanchored unless written with ^ and $) matched against the names of the
exchanges, queues and streams it may configure, write to and read from, as
RabbitMQ's. An empty expression allows nothing.`,
		func(c *cobra.Command) func([]string) (any, error) {
			conf := c.Flags().String("configure", "", "what the user may declare and delete")
			write := c.Flags().String("write", "", "what the user may publish to")
			read := c.Flags().String("read", "", "what the user may consume from")
			return func([]string) (any, error) {
				return map[string]any{"configure": *conf, "write": *write, "read": *read}, nil
			}
		})
	return e.parent("Manage permissions: list, create, delete, inspect",
		"List, set, remove and inspect users' permissions in a tenant (administrators only)."+clientEnvHelp,
		`  ferry permission create billing --configure '^billing\.' --write '.*' --read '.*'
  ferry permission list --all-tenants
  ferry permission delete billing`,
		e.listCommand("  ferry permission list\n  ferry permission list --of billing --all-tenants"), create,
		e.deleteCommand("  ferry permission delete billing\n  ferry permission delete analyst --tenant staging", nil),
		newPermissionInspectCommand())
}

func newPermissionInspectCommand() *cobra.Command {
	var o *clientOpts
	c := &cobra.Command{
		Use:     "inspect USER",
		Short:   "Show a user's permissions",
		Long:    "Show, as JSON, USER's permissions in every tenant." + clientEnvHelp,
		Example: "  ferry permission inspect billing",
		Args:    exactArgs(1, "a user name"),
		RunE: func(c *cobra.Command, args []string) error {
			var items []map[string]any
			if err := o.call(c, "GET", "/api/permissions", url.Values{"user": {args[0]}}, nil, &items); err != nil {
				return err
			}
			return printJSON(c.OutOrStdout(), items)
		},
	}
	o = addClientFlags(c)
	return c
}
