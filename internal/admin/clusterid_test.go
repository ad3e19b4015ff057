package admin

import (
	"net/http"
	"testing"
)

// The overview shows the cluster's id, the one Kafka clients see.
func TestOverviewShowsTheClusterID(t *testing.T) {
	b := openBroker(t)
	a := newAPI(t, b, Config{})
	var ov Overview
	a.must(http.StatusOK, "GET", "/api/overview", nil).json(t, &ov)
	if ov.ClusterID == "" || ov.ClusterID != b.ClusterID() {
		t.Errorf("overview cluster_id = %q, want the broker's %q", ov.ClusterID, b.ClusterID())
	}
}
