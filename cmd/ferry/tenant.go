package main

import (
	"github.com/spf13/cobra"
)

func init() { addCommand(newTenantCommand) }

var tenantEntity = &entity{noun: "tenant", api: "/api/tenants", group: "admin",
	columns: []column{{"NAME", "name"}}}

func newTenantCommand() *cobra.Command {
	e := tenantEntity
	create := e.createCommand("create NAME", `  # A tenant for the staging environment
  ferry tenant create staging

  # Then let a user in (tenants are RabbitMQ virtual hosts)
  ferry permission create billing --tenant staging --configure '.*' --write '.*' --read '.*'`,
		`Create a tenant (a RabbitMQ virtual host): its own namespace of exchanges,
queues, streams and policies. Users need a permission in it ('ferry permission
create --tenant NAME') to connect to it. Creating one that exists succeeds.`,
		func(c *cobra.Command) func([]string) (any, error) {
			return func([]string) (any, error) { return nil, nil }
		})
	del := e.deleteCommand(`  # Delete a tenant with everything in it
  ferry tenant delete staging`, nil)
	del.Long = `Delete a tenant and everything in it: its queues and streams with their
messages, exchanges, bindings, policies and every user's permission there.
Connections to it are closed, as RabbitMQ does when a virtual host is deleted.` + clientEnvHelp
	return e.parent("Manage tenants (virtual hosts): list, create, delete, inspect",
		"List, create, delete and inspect tenants, RabbitMQ's virtual hosts (administrators create and delete them; any management tag may list and inspect them: administrators and monitoring users see every tenant, others those where they hold a permission)."+clientEnvHelp,
		`  ferry tenant create staging
  ferry tenant list
  ferry tenant delete staging`,
		e.listCommand("  ferry tenant list\n  ferry tenant list -o json"), create, del,
		e.inspectCommand("  ferry tenant inspect staging\n  ferry tenant inspect /"))
}
