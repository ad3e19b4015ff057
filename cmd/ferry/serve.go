package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferry-mq/ferry/internal/server"
)

func newServeCommand(environ env) *cobra.Command {
	var configFile string
	var printConfig bool
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a Ferry node",
		Long: `Run a Ferry node until SIGTERM or SIGINT.

With no flags: a single node (node 1, a cluster of itself) with its data in
./data, AMQP on :5672, Kafka on :9092, the HTTP API on :8080, logs on stderr.
One line per listener is printed at start, then "ferry: ready" once the node
takes requests.

Configuration comes from the defaults, a YAML file (--config or
FERRY_CONFIG), FERRY_* environment variables and the flags below, each
overriding the ones before; docs/configuration.md lists every key. An
invalid value stops the start with exit status 2, naming the key.

The first SIGTERM or SIGINT stops accepting, lets in-flight confirms finish,
flushes and closes (bounded by shutdown.timeout); a second one exits at once.`,
		Example: `  # A single node with the defaults
  ferry serve

  # Data elsewhere, AMQP on another port, JSON logs
  ferry serve --data-dir /var/lib/ferry --listeners-amqp :5673 --log-format json

  # The same through the environment
  FERRY_DATA_DIR=/var/lib/ferry FERRY_LISTENERS_AMQP=:5673 ferry serve

  # From a file, then show what the node would run with and where each value came from
  ferry serve --config ferry.yaml --print-config

  # Free ports picked by the OS (the bound addresses are printed at start)
  ferry serve --listeners-amqp 127.0.0.1:0 --listeners-kafka 127.0.0.1:0 --listeners-http 127.0.0.1:0`,
		GroupID: "node",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			file := configFile
			if !c.Flags().Changed("config") {
				file = lookupEnv(environ, "FERRY_CONFIG")
			}
			loaded, err := server.Load(server.Sources{File: file, Env: environ, Flags: c.Flags()})
			if err != nil {
				return err
			}
			if printConfig {
				_, err := io.WriteString(c.OutOrStdout(), loaded.YAML())
				return err
			}
			return serve(loaded.Config, c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&configFile, "config", "", "YAML configuration file (env FERRY_CONFIG); docs/configuration.md lists the keys")
	c.Flags().BoolVar(&printConfig, "print-config", false, "print the effective configuration as YAML, with where each value came from, and exit")
	server.RegisterFlags(c.Flags())
	c.Flags().SortFlags = false
	return c
}

// serve runs the node until the first signal, and exits the process at
// once on the second.
func serve(cfg server.Config, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2) // two: the first starts the shutdown, the second forces it
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchSignals(sigs, done, cancel, func(sig os.Signal) {
			fmt.Fprintf(stderr, "ferry: second signal (%v): exiting now, without finishing the shutdown\n", sig)
			os.Exit(ExitError)
		}, stderr)
	}()
	defer func() {
		close(done)
		<-watched
	}()
	return server.Run(ctx, cfg, server.Options{
		Logger:   server.NewLogger(cfg.Log, stderr),
		Announce: stderr,
		Version:  version,
		Abort:    func(err error) { abortStorage(err, stderr) },
	})
}

// abortStorage ends the process on a storage failure met while recovering
// the metadata store at start (a full or failing disk), which the store
// cannot answer with an error: one line on stderr, exit status 1.
func abortStorage(err error, stderr io.Writer) {
	fmt.Fprintf(stderr, "ferry: %v; free space on the data directory's disk, or repair it, and start again\n", err)
	os.Exit(ExitError)
}

// watchSignals calls cancel at the first signal and force at the second;
// it returns when done is closed or after force.
func watchSignals(sigs <-chan os.Signal, done <-chan struct{}, cancel func(), force func(os.Signal), stderr io.Writer) {
	select {
	case sig := <-sigs:
		fmt.Fprintf(stderr, "ferry: %v received: shutting down (send it again to exit at once)\n", sig)
		cancel()
	case <-done:
		return
	}
	select {
	case sig := <-sigs:
		force(sig)
	case <-done:
	}
}

// lookupEnv returns the value of name in environ, or "".
func lookupEnv(environ env, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
