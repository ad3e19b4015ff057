package broker

import (
	crand "crypto/rand"
	"encoding/base64"

	"github.com/ferry-mq/ferry/internal/controller"
)

// newClusterID draws the id of a new cluster, for its Bootstrap command,
// in the shape of Kafka's cluster ids (randomID's). The proposer draws it
// so that the controller stays a pure state machine: every replica
// applies the same id.
func newClusterID() string { return randomID() }

// randomID draws 16 random bytes in unpadded base64url: 22 characters.
func randomID() string {
	var b [16]byte
	crand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ClusterID returns the cluster's id, the same on every node and for as
// long as the cluster lives (Bootstrap set it, the controller's log and
// snapshots keep it). It is "" before the node has applied Bootstrap and
// for a cluster bootstrapped before cluster ids existed.
func (b *Broker) ClusterID() string {
	var id string
	b.ctrl.read(func(c *controller.Controller) { id = c.ClusterID() })
	return id
}
