package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func init() { addCommand(newUserCommand) }

var userEntity = &entity{noun: "user", api: "/api/users", group: "admin",
	columns: []column{{"NAME", "name"}, {"TAGS", "tags"}}}

// userDeleteCommand is `ferry user delete`, whose help says what a
// deletion does to the user's connections.
func userDeleteCommand(e *entity) *cobra.Command {
	c := e.deleteCommand("  ferry user delete alice", nil)
	c.Long = `Delete a user and its permissions. Its open connections (AMQP, Kafka, HTTP)
are closed, as RabbitMQ does; a user cannot delete itself.` + clientEnvHelp
	return c
}

func newUserCommand() *cobra.Command {
	e := userEntity
	create := e.createCommand("create NAME", `  # An administrator
  ferry user create alice --new-password 's3cret' --tags administrator

  # An application user (give it permissions with 'ferry permission create')
  ferry user create billing --new-password 'pw'`,
		`Create a user, or update an existing one's password and tags. Tags:
administrator (everything), monitoring (read the management API),
policymaker (policies), management; other tags are kept as they are. The
node stores only hashes of the password (argon2id, and SCRAM-SHA-256/512
keys so Kafka clients can log in with SCRAM).`,
		func(c *cobra.Command) func([]string) (any, error) {
			pw := c.Flags().String("new-password", "", "the user's password (empty: keep it; a new user then cannot log in with a password)")
			tags := c.Flags().String("tags", "", "comma-separated tags")
			return func([]string) (any, error) {
				var ts []string
				for _, t := range strings.Split(*tags, ",") {
					if t = strings.TrimSpace(t); t != "" {
						ts = append(ts, t)
					}
				}
				return map[string]any{"password": *pw, "tags": ts}, nil
			}
		})
	// --password is the caller's login (clientOpts); --new-password is the
	// created user's.
	return e.parent("Manage users: list, create, delete, inspect",
		"List, create, delete and inspect users (administrators only)."+clientEnvHelp,
		`  ferry user create alice --new-password s3cret --tags administrator
  ferry user list
  ferry user delete alice`,
		e.listCommand("  ferry user list\n  ferry user list -o json"), create,
		userDeleteCommand(e),
		e.inspectCommand("  ferry user inspect alice"))
}
