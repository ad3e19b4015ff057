package kafka

import (
	"testing"

	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// TestBrokerBackendReportsTheBrokersClusterIDByDefault: without a
// configured id, Metadata and DescribeCluster report the id the cluster's
// Bootstrap drew, the same on every node.
func TestBrokerBackendReportsTheBrokersClusterIDByDefault(t *testing.T) {
	b, _ := startBrokerAt(t, t.TempDir(), nil)
	srv := startServer(t, &BrokerBackend{B: b}, nil)
	want := b.ClusterID()
	if want == "" {
		t.Fatal("the broker has no cluster id after its bootstrap")
	}
	c := dialRaw(t, srv.addr)
	var dc protocol.DescribeClusterResponse
	c.roundTrip(&protocol.DescribeClusterRequest{EndpointType: 1}, &dc, 1)
	if dc.ClusterId != want {
		t.Errorf("DescribeCluster's cluster id = %q, want the broker's %q", dc.ClusterId, want)
	}
	var md protocol.MetadataResponse
	c.roundTrip(&protocol.MetadataRequest{}, &md, 12)
	if md.ClusterId == nil || *md.ClusterId != want {
		t.Errorf("Metadata's cluster id = %v, want the broker's %q", md.ClusterId, want)
	}
}
