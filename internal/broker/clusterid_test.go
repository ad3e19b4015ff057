package broker

import (
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
