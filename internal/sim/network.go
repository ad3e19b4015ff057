package sim

import (
	"container/heap"
	"fmt"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/replication"
)

// packet is one thing in flight: an encoded batch, a snapshot stream, or a
// node-level ping.
type packet struct {
	at       time.Time
	seq      uint64 // breaks ties in send order: deterministic
	from, to replication.NodeID
	payload  []byte                        // an encoded Batch
	snap     *replication.OutgoingSnapshot // or a snapshot
	ping     bool                          // or a ping
}

type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// network is the simulated network: packets wait in a queue ordered by
// delivery time; each may be dropped or duplicated when sent, and links
// may be cut in either direction.
type network struct {
	s        *Sim
	q        packetHeap
	seq      uint64
	cut      map[[2]replication.NodeID]bool // from, to
	dropPct  int                            // per mille of packets dropped
	dupPct   int                            // per mille duplicated
	delayMin time.Duration
	delayMax time.Duration
}

func (n *network) delay() time.Duration {
	span := int64(n.delayMax - n.delayMin)
	return n.delayMin + time.Duration(n.s.rng.Int64N(span+1))
}

func (n *network) push(p *packet) {
	rng := n.s.rng
	if n.s.faults && rng.IntN(1000) < n.dropPct {
		n.s.trace("drop", uint64(p.from), uint64(p.to))
		if p.snap != nil {
			n.s.afterDelivery(p.snap, fmt.Errorf("sim: snapshot stream dropped"))
		}
		return
	}
	copies := 1
	if n.s.faults && p.snap == nil && rng.IntN(1000) < n.dupPct {
		copies = 2
	}
	for range copies {
		c := *p
		n.seq++
		c.seq = n.seq
		c.at = n.s.clock.Now().Add(n.delay())
		heap.Push(&n.q, &c)
	}
}

// deliverDue delivers every packet whose time has come, in time order.
func (n *network) deliverDue() {
	now := n.s.clock.Now()
	for n.q.Len() > 0 && !n.q[0].at.After(now) {
		p := heap.Pop(&n.q).(*packet)
		n.deliver(p)
	}
}

func (n *network) deliver(p *packet) {
	s := n.s
	dst := s.nodes[p.to]
	if n.cut[[2]replication.NodeID{p.from, p.to}] || dst == nil || dst.e == nil {
		if p.snap != nil {
			s.afterDelivery(p.snap, fmt.Errorf("sim: snapshot stream lost"))
		}
		return
	}
	switch {
	case p.ping:
		dst.heard[p.from] = s.clock.Now()
		if dst.reported[p.from] {
			dst.reported[p.from] = false
			dst.e.PeerUp(p.from)
			s.trace("peerup", uint64(p.to), uint64(p.from))
		}
	case p.snap != nil:
		r, err := p.snap.Open()
		if err == nil {
			err = dst.e.ReceiveSnapshot(p.from, r)
			r.Close()
		}
		s.trace("snap", uint64(p.from), uint64(p.to))
		s.afterDelivery(p.snap, err)
	default:
		b, err := replication.DecodeBatch(p.payload, p.from, p.to)
		if err != nil {
			s.fail("node %d sent node %d a batch that does not decode: %v", p.from, p.to, err)
			return
		}
		s.trace("batch", uint64(p.from), uint64(p.to), uint64(len(p.payload)))
		if s.opts.Trace != nil {
			for _, env := range b.Messages {
				m := env.Msg
				var ents []string
				for _, e := range m.GetEntries() {
					ents = append(ents, fmt.Sprintf("%d:%d", e.GetIndex(), e.GetTerm()))
				}
				fmt.Fprintf(s.opts.Trace, "    g%d %v term=%d logterm=%d index=%d commit=%d reject=%v hint=%d ents=%v\n",
					env.Group, m.GetType(), m.GetTerm(), m.GetLogTerm(), m.GetIndex(), m.GetCommit(), m.GetReject(), m.GetRejectHint(), ents)
			}
		}
		dst.e.HandleBatch(p.from, b)
	}
}

// endpoint is one node's Transport: it encodes what the engine sends, as
// the TCP transport would, and records what the sent messages claim (what
// the sender promised is durable).
type endpoint struct {
	s    *Sim
	node replication.NodeID
	inc  int // the node's incarnation: a crashed process sends nothing
}

func (ep endpoint) alive() bool {
	n := ep.s.nodes[ep.node]
	return n != nil && n.e != nil && n.inc == ep.inc
}

func (ep endpoint) Send(to replication.NodeID, b *replication.Batch) {
	if !ep.alive() {
		return
	}
	ep.s.claims(ep.node, b)
	ep.s.net.push(&packet{from: ep.node, to: to, payload: replication.EncodeBatch(nil, b)})
}

func (ep endpoint) SendSnapshot(to replication.NodeID, os *replication.OutgoingSnapshot) {
	if !ep.alive() {
		os.Done(fmt.Errorf("sim: sender is down"))
		return
	}
	ep.s.net.push(&packet{from: ep.node, to: to, snap: os})
}

// afterDelivery reports a snapshot stream's outcome to its sender.
func (s *Sim) afterDelivery(os *replication.OutgoingSnapshot, err error) { os.Done(err) }

// claims records what a node's outgoing messages promise about its durable
// state: a (non-rejecting) append response says its log holds the leader's
// entries up to Index; a granted vote says its vote is durable; any message
// says its term is.
func (s *Sim) claims(from replication.NodeID, b *replication.Batch) {
	n := s.nodes[from]
	for _, env := range b.Messages {
		m := env.Msg
		g := n.groups[env.Group]
		if g == nil {
			continue
		}
		if t := m.GetType(); t != pb.MsgPreVote && t != pb.MsgPreVoteResp {
			// Pre-votes carry a term the node has not taken (yet).
			g.maxTerm = max(g.maxTerm, m.GetTerm())
		}
		switch m.GetType() {
		case pb.MsgAppResp:
			if !m.GetReject() && m.GetIndex() > 0 {
				if t, err := g.log.Term(m.GetIndex()); err == nil {
					g.claim = durableClaim{index: m.GetIndex(), term: t}
				}
			}
		case pb.MsgVoteResp:
			if !m.GetReject() && m.GetTerm() >= g.voteTerm {
				g.voteTerm, g.voteFor = m.GetTerm(), m.GetTo()
			}
		}
	}
	for _, hb := range b.Heartbeats {
		if g := n.groups[hb.Group]; g != nil {
			g.maxTerm = max(g.maxTerm, hb.Term)
		}
	}
}
