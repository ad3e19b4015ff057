package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func init() { addCommand(newClusterCommand) }

func newClusterCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "cluster",
		Short:   "Inspect the cluster",
		Long:    "Inspect the cluster the node belongs to." + clientEnvHelp,
		Example: "  ferry cluster status",
		GroupID: "admin",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return &usageError{fmt.Errorf("ferry cluster needs a subcommand: status\nRun 'ferry cluster --help' for usage.")}
		},
	}
	c.AddCommand(newClusterStatusCommand())
	return c
}

// clusterStatus is what GET /api/cluster and /api/overview answer.
type clusterStatus struct {
	Self  uint64 `json:"self"`
	Nodes []struct {
		ID       uint64 `json:"id"`
		RaftAddr string `json:"raft_addr"`
		State    string `json:"state"`
		Self     bool   `json:"self"`
	} `json:"nodes"`
	Partitions []struct {
		Stream    string   `json:"stream"`
		Partition int32    `json:"partition"`
		Leader    uint64   `json:"leader"`
		Replicas  []uint64 `json:"replicas"`
	} `json:"partitions"`
}

type overview struct {
	Node        uint64         `json:"node"`
	Version     string         `json:"version"`
	Blocked     bool           `json:"blocked"`
	BlockReason string         `json:"block_reason"`
	Queues      int            `json:"queues"`
	Streams     int            `json:"streams"`
	Exchanges   int            `json:"exchanges"`
	Connections map[string]int `json:"connections"`
	Messages    struct {
		Ready   uint64 `json:"ready"`
		Unacked uint64 `json:"unacked"`
		Delayed uint64 `json:"delayed"`
	} `json:"messages"`
}

func newClusterStatusCommand() *cobra.Command {
	var o *clientOpts
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's nodes and the node's state",
		Long: `Show the node answering (version, flow control, entities, messages,
connections) and every node of the cluster with its state.` + clientEnvHelp,
		Example: "  ferry cluster status\n  ferry cluster status --server http://node2:8080 -o json",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.checkOutput(c, "table", "json"); err != nil {
				return err
			}
			cl, err := o.client()
			if err != nil {
				return err
			}
			ctx, cancel := o.ctx(c)
			defer cancel()
			var cs clusterStatus
			if err := cl.call(ctx, "GET", "/api/cluster", o.tenantQuery(), nil, &cs); err != nil {
				return err
			}
			var ov overview
			if err := cl.call(ctx, "GET", "/api/overview", nil, nil, &ov); err != nil {
				return err
			}
			out := c.OutOrStdout()
			if o.output == "json" {
				return printJSON(out, map[string]any{"cluster": cs, "overview": ov})
			}
			blocked := "no"
			if ov.Blocked {
				blocked = "yes: " + ov.BlockReason
			}
			fmt.Fprintf(out, "node %d (version %s), publishers blocked: %s\n", ov.Node, ov.Version, blocked)
			fmt.Fprintf(out, "%d queues, %d streams, %d exchanges; messages ready %d, unacked %d, delayed %d; connections %v\n\n",
				ov.Queues, ov.Streams, ov.Exchanges, ov.Messages.Ready, ov.Messages.Unacked, ov.Messages.Delayed, ov.Connections)
			var rows [][]string
			for _, n := range cs.Nodes {
				self := ""
				if n.Self {
					self = "*"
				}
				rows = append(rows, []string{strconv.FormatUint(n.ID, 10) + self, n.State, n.RaftAddr})
			}
			return table(out, []string{"NODE", "STATE", "RAFT_ADDRESS"}, rows)
		},
	}
	o = addClientFlags(c, "table", "json")
	return c
}
