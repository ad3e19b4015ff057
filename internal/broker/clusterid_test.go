package broker

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// TestClusterIDIsStableAcrossRestarts: the id Bootstrap drew is read back
// from the controller's log and snapshots after each restart.
func TestClusterIDIsStableAcrossRestarts(t *testing.T) {
	fs := vfs.NewMem()
	b := openNode(t, nodeOpts{fs: fs})
	id := b.ClusterID()
	if len(id) != 22 {
		t.Fatalf("ClusterID() = %q, want 22 characters (16 bytes in base64url)", id)
	}
	for restart := range 2 {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b = openNode(t, nodeOpts{fs: fs})
		if got := b.ClusterID(); got != id {
			t.Fatalf("after restart %d ClusterID() = %q, want %q", restart+1, got, id)
		}
	}
	if other := openNode(t, nodeOpts{}).ClusterID(); other == id {
		t.Errorf("two clusters drew the same id %q", id)
	}
}

// TestClusterIDIsTheSameOnEveryNode: one node proposes Bootstrap with the
// id it drew; every replica applies that id.
func TestClusterIDIsTheSameOnEveryNode(t *testing.T) {
	cl := newCluster(t, 3)
	id := cl.nodes[0].ClusterID()
	if id == "" {
		t.Fatal("node 1 has no cluster id after the bootstrap")
	}
	for i, b := range cl.nodes {
		if got := b.ClusterID(); got != id {
			t.Errorf("node %d: ClusterID() = %q, want node 1's %q", i+1, got, id)
		}
	}
}

// warnSignal is a slog.Handler that sends each warning's message on its
// channel (when there is room), so that a test waits for a logged event.
type warnSignal chan string

func (w warnSignal) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnSignal) Handle(_ context.Context, r slog.Record) error {
	select {
	case w <- r.Message:
	default:
	}
	return nil
}
func (w warnSignal) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnSignal) WithGroup(string) slog.Handler      { return w }

// A node started on another cluster's data directory (a copy restored on
// the wrong machine, a path mistyped) presents that cluster's id from its
// first handshake: the cluster's nodes refuse it, and nothing fails on
// either side. Before, the two clusters' Raft groups met and one side
// stopped on "lost acknowledged entries" or panicked in raft.
func TestClusterANodeOnAnotherClustersDataIsRefused(t *testing.T) {
	a, other := threeNodes(t), threeNodes(t)
	ctx := testCtx(t)
	a.waitFor(func() bool {
		for _, b := range a.nodes {
			if !b.clusterIDLearned.Load() {
				return false
			}
		}
		return true
	}, "the cluster's nodes know its id")
	c := guestConn(t, a.nodes[0])
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "kept", Durable: true}); err != nil {
		t.Fatalf("declare: %v", err)
	}
	publish := func(body string) {
		t.Helper()
		if res, err := c.Publish(ctx, "", []Message{{RoutingKey: "kept", Body: []byte(body)}}, PublishOptions{}); err != nil || res[0].Err != nil {
			t.Fatalf("publish %s: %v %v", body, err, res)
		}
	}
	publish("before")
	a.stop(2)
	other.stop(2)
	a.fs[2] = other.fs[2]
	warns := make(warnSignal, 64)
	a.tweak = func(cfg *Config) { cfg.Logger = slog.New(warns) }
	a.restart(2)
	impostor := a.nodes[2]
	for refused := false; !refused; {
		select {
		case msg := <-warns:
			refused = strings.Contains(msg, "another cluster")
		case <-ctx.Done():
			t.Fatal("the node on the other cluster's data never refused a peer")
		}
	}
	if impostor.EngineMetrics().HandshakesRefused == 0 {
		t.Error("the refusal was logged but not counted")
	}
	publish("after")
	d := guestConn(t, a.nodes[1])
	for _, want := range []string{"before", "after"} {
		m, _, ok, err := d.Get(ctx, "kept", true)
		if err != nil || !ok || string(m.Message.Body) != want {
			t.Fatalf("get: %q %v %v, want %q", m.Message.Body, ok, err, want)
		}
	}
	for i, b := range a.nodes {
		if err := b.Err(); err != nil {
			t.Errorf("node %d failed: %v", i+1, err)
		}
	}
}
