// Command ferry is Ferry's one binary: `ferry serve` runs a node, the
// other subcommands are clients of a running node.
//
// It owns the command line only: parsing, help, error printing and exit
// codes. It must never hold broker logic: `serve` builds a server.Config
// with server.Load and calls server.Run; client commands talk to a node
// over its HTTP API or a protocol. No package-level state outside this
// command's own plumbing (the command registry below).
//
// # Files and owners
//
// main.go, root.go, exit.go, serve.go and version.go are the root
// command, the shared plumbing and the node commands. Every other
// command lives in its own file (publish.go, consume.go, queue.go, ...)
// and registers itself from that file's init function:
//
//	func init() { addCommand(newPublishCommand) }
//
// where the constructor returns a fresh *cobra.Command each time it is
// called (tests build the tree many times). Commands appear in `ferry
// --help` in registration order, grouped by their GroupID: "node"
// (serve, version), "client" (publish, consume, queue, stream, ...),
// "admin" (tenant, user, permission, policy, cluster, trace) and "tools"
// (bench).
//
// # Conventions every command follows
//
//   - Use, Short, Long and Example are set; Example shows real command
//     lines (TestEveryCommandHasHelpWithExamples enforces it).
//   - RunE returns errors, never prints them or calls os.Exit: main
//     prints "ferry: <message>" once and exits with the error's code.
//   - Errors say what was wrong and how to fix it. To choose the exit
//     code, return exitErr(code, err) with one of the Exit* constants
//     (exit.go); otherwise the code follows from the error: a
//     *server.ConfigError or a usage error is ExitUsage, a base.Error's
//     code maps through exitCodeFor, anything else is ExitError.
//   - Output for people goes to cmd.OutOrStdout(); diagnostics to
//     cmd.ErrOrStderr(), so tests capture both.
//
// The exit codes are documented in docs/cli.md.
package main
