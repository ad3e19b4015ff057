package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func init() { addCommand(newUserCommand) }

var userEntity = &entity{noun: "user", api: "/api/users", group: "admin",
	columns: []column{{"NAME", "name"}, {"TAGS", "tags"}}}

func newUserCommand() *cobra.Command {
	e := userEntity
	create := e.createCommand("create NAME", `  # An administrator
  ferry user create alice --new-password 's3cret' --tags administrator

  # An application user (give it permissions with 'ferry permission create')
  ferry user create billing --new-password 'pw'`,
		`Create a user, or update an existing one's password and tags. Tags:
administrator (everything), monitoring (read the management API),
policymaker (policies), management; other tags are kept as they are.`,
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
		e.deleteCommand("  ferry user delete alice", nil),
		e.inspectCommand("  ferry user inspect alice"))
}
