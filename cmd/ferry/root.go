package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// commandConstructors are the commands registered by addCommand, in
// registration order. Written only by init functions (before main), read
// by newRootCommand.
var commandConstructors []func() *cobra.Command

// addCommand registers a top-level command; call it from an init
// function of the command's file (see doc.go).
func addCommand(newCommand func() *cobra.Command) {
	commandConstructors = append(commandConstructors, newCommand)
}

// Command groups of `ferry --help`.
var commandGroups = []*cobra.Group{
	{ID: "node", Title: "Run a node:"},
	{ID: "client", Title: "Messages and topology:"},
	{ID: "admin", Title: "Administration:"},
	{ID: "tools", Title: "Tools:"},
}

// env is the process environment as the commands see it (os.Environ in
// main, a test's own list in tests).
type env []string

// newRootCommand builds the whole command tree; environ is the
// environment the commands read (FERRY_* variables).
func newRootCommand(environ env, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Ferry: a durable, replicated message broker speaking Kafka, AMQP 0-9-1, MQTT, STOMP and HTTP",
		Long: `Ferry is a message broker in one binary: durable by default (nothing is
confirmed before it is fsynced) and replicated (every queue and stream
partition is its own Raft group).

'ferry serve' runs a node; the other commands are clients of a running node.
Exit codes are listed in docs/cli.md.`,
		Example: `  # Run a single node with data in ./data and every listener on its standard port
  ferry serve

  # Show the configuration a node would run with
  ferry serve --print-config

  # Print the version
  ferry version`,
		Version:           versionString(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath())}
	})
	root.AddCommand(newServeCommand(environ), newVersionCommand())
	for _, newCommand := range commandConstructors {
		root.AddCommand(newCommand())
	}
	used := map[string]bool{"node": true} // help joins "node"
	known := map[string]bool{}
	for _, g := range commandGroups {
		known[g.ID] = true
	}
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			continue
		}
		if !known[c.GroupID] {
			c.GroupID = "client" // unset or misspelled: cobra would panic on an unknown group
		}
		used[c.GroupID] = true
	}
	for _, g := range commandGroups {
		if used[g.ID] {
			root.AddGroup(g)
		}
	}
	root.SetHelpCommandGroupID("node")
	return root
}

// noArgs is cobra.NoArgs with an error that says how to fix it.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("%s takes no arguments, got %q\nRun '%s --help' for usage.", c.CommandPath(), args, c.CommandPath())}
	}
	return nil
}
