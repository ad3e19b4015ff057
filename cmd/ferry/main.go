package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code; errors
// are printed once, here, as "ferry: <message>".
func run(args []string, environ env, stdout, stderr io.Writer) int {
	root := newRootCommand(environ, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	if isUnknownCommand(err) {
		err = &usageError{fmt.Errorf("%w\nRun 'ferry --help' for the list of commands.", err)}
	}
	fmt.Fprintf(stderr, "ferry: %v\n", err)
	return exitCodeOf(err)
}

// isUnknownCommand recognises cobra's error for an unknown subcommand,
// which it returns as a plain error.
func isUnknownCommand(err error) bool {
	var ue *usageError
	return !errors.As(err, &ue) && strings.HasPrefix(err.Error(), "unknown command ")
}
