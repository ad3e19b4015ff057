package controller

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// TestClusterIDSurvivesTheCodecAndSnapshots: the id Bootstrap carries is
// the controller's, through the command codec and a snapshot's restore.
func TestClusterIDSurvivesTheCodecAndSnapshots(t *testing.T) {
	data, err := Encode(&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}}, ClusterID: "AAECAwQFBgcICQoLDA0ODw"})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{})
	if r := c.Apply(cmd); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := c.ClusterID(); got != "AAECAwQFBgcICQoLDA0ODw" {
		t.Fatalf("ClusterID() = %q after Bootstrap, want its id", got)
	}
	r := New(Options{})
	if err := r.Restore(c.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if got := r.ClusterID(); got != c.ClusterID() {
		t.Errorf("ClusterID() after Restore = %q, want %q", got, c.ClusterID())
	}
}

// TestBootstrapsAndSnapshotsWithoutAClusterIDStillDecode pins the format
// compatibility: a Bootstrap logged, or a snapshot written, before cluster
// ids existed is what the codec still writes for an empty id (the field
// is optional and last), so old logs and snapshots restore unchanged.
func TestBootstrapsAndSnapshotsWithoutAClusterIDStillDecode(t *testing.T) {
	// A version-1 Bootstrap as written before: one node, 0 coordinator
	// groups (so 1), no guest.
	old := []byte{commandVersion, byte(kindBootstrap), 2, 1, 1, 7, 'n', '1', ':', '7', '9', '4', '6', 0, 0, 0}
	cmd, err := Decode(old)
	if err != nil {
		t.Fatalf("an old Bootstrap does not decode: %v", err)
	}
	if b := cmd.(*Bootstrap); b.ClusterID != "" || len(b.Nodes) != 1 {
		t.Fatalf("old Bootstrap decoded as %+v, want one node and no cluster id", b)
	}
	if again, _ := Encode(cmd); !bytes.Equal(again, old) {
		t.Errorf("old Bootstrap re-encodes as %x, want %x", again, old)
	}
	c := New(Options{})
	if r := c.Apply(cmd); r.Err != nil {
		t.Fatal(r.Err)
	}
	snap := c.Snapshot() // no cluster id: the bytes a version-1 node wrote
	r := New(Options{})
	if err := r.Restore(snap); err != nil || r.ClusterID() != "" {
		t.Fatalf("restoring a snapshot without a cluster id: %v, id %q", err, r.ClusterID())
	}
	withID := New(Options{})
	withID.Apply(&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}}, ClusterID: "c"})
	if s := withID.Snapshot(); len(s) != len(snap)+2 {
		t.Errorf("a one-byte cluster id adds %d bytes to the snapshot, want 2 (length and byte)", len(s)-len(snap))
	}
}

// TestBootstrapRefusesAClusterIDPastItsBoundOrUnprintable: the id is a
// Kafka-visible label, at most ControllerClusterIDBytesMax printable bytes;
// the decoder refuses a present but empty one, which Encode never writes.
func TestBootstrapRefusesAClusterIDPastItsBoundOrUnprintable(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{strings.Repeat("a", base.ControllerClusterIDBytesMax), true},
		{strings.Repeat("a", base.ControllerClusterIDBytesMax+1), false},
		{"has space", false},
		{"tab\t", false},
	} {
		c := New(Options{})
		r := c.Apply(&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}}, ClusterID: tt.id})
		if (r.Err == nil) != tt.ok {
			t.Errorf("Bootstrap with a cluster id of %d bytes %q: %v, want ok %v", len(tt.id), tt.id, r.Err, tt.ok)
		}
		if !tt.ok && c.ClusterID() != "" {
			t.Errorf("a refused Bootstrap set the cluster id %q", c.ClusterID())
		}
	}
	data, _ := Encode(&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}}})
	if _, err := Decode(append(data, 0)); err == nil {
		t.Error("a Bootstrap with an empty cluster id present decoded, want refused (not canonical)")
	}
	long, _ := Encode(&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}}, ClusterID: strings.Repeat("a", base.ControllerClusterIDBytesMax+1)})
	if _, err := Decode(long); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("decoding a cluster id past the bound: %v, want corrupt", err)
	}
}
