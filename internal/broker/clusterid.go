package broker

import (
	crand "crypto/rand"
	"encoding/base64"
	"hash/fnv"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/storage/meta"
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

// clusterIDKey holds, in the node's metadata store, the id of the cluster
// the node belongs to: read at Open, so that the replication transport
// presents it from its first handshake (the controller knows it only once
// its log is replayed, while peers may already be talking to this node).
var clusterIDKey = meta.NodeKey("cluster-id")

// storedClusterID returns the cluster id this node stored, "" before it
// learned one.
func (b *Broker) storedClusterID() (string, error) {
	v, err := b.meta.Get(clusterIDKey)
	if base.CodeOf(err) == base.CodeNotFound {
		return "", nil
	}
	return string(v), err
}

// learnClusterID runs after each change to the controller's state: the
// first time the state holds a cluster id (Bootstrap applied, or a
// snapshot holding it installed) it gives the id to the transport, which
// from then on refuses nodes of other clusters (a node started on another
// cluster's data directory, or given another cluster's addresses), and
// stores it for the next start. It runs on the engine loop applying the
// controller's entries, before the change is announced: whoever waits for
// the change finds the transport checking.
func (b *Broker) learnClusterID() {
	if b.clusterIDLearned.Load() {
		return
	}
	id := b.ClusterID()
	if id == "" {
		return // not bootstrapped yet, or bootstrapped before cluster ids existed
	}
	defer b.clusterIDLearned.Store(true)
	if b.transport != nil {
		b.transport.SetClusterID(transportClusterID(id))
	}
	if stored, err := b.storedClusterID(); err == nil && stored == id {
		return
	}
	batch := b.meta.NewBatch()
	err := batch.Set(clusterIDKey, []byte(id))
	if err == nil {
		err = b.meta.Commit(batch, meta.Sync)
	}
	if err != nil {
		b.log.Error("storing the cluster id; the next start accepts peers of any cluster until the controller's log is read", "err", err)
	}
}

// transportClusterID is a cluster id in the replication handshake's form:
// 64 bits of its FNV-1a hash, never 0 (which there means "not known").
func transportClusterID(id string) uint64 {
	if id == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return max(h.Sum64(), 1)
}
