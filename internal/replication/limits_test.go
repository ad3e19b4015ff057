package replication

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestRaftConfigCarriesTheNamedLimits(t *testing.T) {
	e, _, _ := singleNode(t, nil, nil)
	e.mu.Lock()
	g := e.groups[1]
	e.mu.Unlock()
	c := g.raftConfig(0)
	if c.MaxSizePerMsg != base.RaftMessageBytesMax || c.MaxInflightMsgs != base.RaftInflightMsgsMax ||
		c.MaxInflightBytes != base.RaftInflightBytesMax || c.MaxUncommittedEntriesSize != base.RaftUncommittedBytesMax ||
		c.MaxCommittedSizePerReady != base.RaftApplyBytesMax || !c.CheckQuorum || !c.PreVote || !c.DisableProposalForwarding {
		t.Errorf("raft config does not carry the named limits: %+v", c)
	}
}

func TestPromotionWaitsUntilTheLearnerIsWithinTheLagBound(t *testing.T) {
	if !caughtUp(100, 100+base.RaftPromoteLagEntriesMax) {
		t.Errorf("a learner exactly RaftPromoteLagEntriesMax behind is not caught up")
	}
	if caughtUp(100, 101+base.RaftPromoteLagEntriesMax) {
		t.Errorf("a learner one entry further behind is caught up")
	}
	c := newTestCluster(t, []NodeID{1, 2, 3, 4}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	c.open(4, 1, nil)
	if r := c.memberOp(1, false, MembershipChange{AddLearner, 4}); r.Err != nil {
		t.Fatal(r.Err)
	}
	lead := c.waitLeader(1)
	c.net.cut[[2]NodeID{lead, 4}] = true
	for i := range base.RaftPromoteLagEntriesMax + 10 {
		if r := c.propose(lead, 1, fmt.Sprint(i)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	var res *Result
	c.nodes[lead].e.ChangeMembershipAsync(1, true, func(r Result) { res = &r }, MembershipChange{AddVoter, 4})
	for range 100 {
		c.step()
	}
	if st, _ := c.nodes[lead].e.Status(1); res != nil || slices4(st.Voters) {
		t.Fatalf("promotion of a lagging learner went ahead: %+v, voters %v", res, st.Voters)
	}
	delete(c.net.cut, [2]NodeID{lead, 4})
	c.runUntil("promotion", 3000, func() bool { return res != nil })
	if res.Err != nil {
		t.Fatalf("promotion after catching up: %v", res.Err)
	}
}

func slices4(v []NodeID) bool {
	for _, n := range v {
		if n == 4 {
			return true
		}
	}
	return false
}

func TestUncommittedBytesAreBoundedOnTheLeader(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	for _, id := range voters { // no commits: the uncommitted tail grows
		if id != lead {
			c.net.cut[[2]NodeID{lead, id}], c.net.cut[[2]NodeID{id, lead}] = true, true
		}
	}
	cmd := make([]byte, 4<<20)
	size := len(encodeControl(controlCommand, cmd, 0))
	fit := base.RaftUncommittedBytesMax / size
	var errs []error
	for range fit + 1 {
		c.nodes[lead].e.ProposeAsync(1, cmd, func(r Result) { errs = append(errs, r.Err) })
		c.nodes[lead].e.Step()
	}
	if len(errs) != 1 || base.CodeOf(errs[0]) != base.CodeOverloaded {
		t.Errorf("%d proposals of %d bytes: resolved %v, want only the last one overloaded", fit+1, size, errs)
	}
	c.net.queue, c.net.snaps = nil, nil // let the big messages go
}

// recordingNet wraps the test network to look at what a node sends.
func maxAppendBytes(batches []*Batch) (biggest int, multi bool) {
	for _, b := range batches {
		for _, env := range b.Messages {
			if env.Msg.GetType() != pb.MsgApp || len(env.Msg.GetEntries()) < 2 {
				continue
			}
			n := 0
			for _, e := range env.Msg.GetEntries() {
				n += len(e.GetData())
			}
			biggest, multi = max(biggest, n), true
		}
	}
	return biggest, multi
}

func TestAppendMessagesStayWithinTheMessageBound(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	lag := lead%3 + 1
	c.net.cut[[2]NodeID{lead, lag}] = true
	cmd := make([]byte, 100<<10)
	for range 40 {
		if r := c.propose(lead, 1, string(cmd)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	delete(c.net.cut, [2]NodeID{lead, lag})
	var sent []*Batch
	for range 200 {
		c.clock.Advance(5 * time.Millisecond)
		for _, id := range voters {
			c.nodes[id].e.Step()
		}
		c.net.mu.Lock()
		for _, m := range c.net.queue {
			if m.from == lead && m.to == lag {
				sent = append(sent, m.b)
			}
		}
		c.net.mu.Unlock()
		c.net.deliver()
	}
	biggest, multi := maxAppendBytes(sent)
	if !multi || biggest > base.RaftMessageBytesMax {
		t.Errorf("catch-up appends: biggest %d bytes (multi-entry seen: %v), bound %d", biggest, multi, base.RaftMessageBytesMax)
	}
	if got := len(c.nodes[lag].fsms[1].datas()); got != 40 {
		t.Errorf("lagging follower applied %d entries, want 40", got)
	}
}

// applyRecorder is a listFSM that records the bytes of each Apply call.
type applyRecorder struct {
	listFSM
	mu    sync.Mutex
	calls []int
}

func (a *applyRecorder) Apply(entries []Entry, results []any) {
	n := 0
	for _, e := range entries {
		n += len(e.Data)
	}
	a.mu.Lock()
	a.calls = append(a.calls, n)
	a.mu.Unlock()
	a.listFSM.Apply(entries, results)
}

func TestApplyBatchesStayWithinTheApplyBound(t *testing.T) {
	e, _, clock := singleNode(t, nil, nil)
	rec := &applyRecorder{}
	if err := e.OpenGroup(2, rec, []NodeID{1}); err != nil {
		t.Fatal(err)
	}
	stepUntil(t, e, clock, func() bool { st, _ := e.Status(2); return st.IsLeader })
	cmd := make([]byte, 1<<20)
	done := 0
	for range 40 { // all in one iteration: they commit together
		e.ProposeAsync(2, cmd, func(Result) { done++ })
	}
	stepUntil(t, e, clock, func() bool { return done == 40 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	total := 0
	for _, n := range rec.calls {
		total += n
		if n > base.RaftApplyBytesMax+len(cmd)+1024 {
			t.Errorf("one Apply got %d bytes, bound %d (plus one entry)", n, base.RaftApplyBytesMax)
		}
	}
	if len(rec.calls) < 2 || total < 40*len(cmd) {
		t.Errorf("40 MiB applied in %d calls (%d bytes): want several bounded calls", len(rec.calls), total)
	}
}

func TestTransportQueueDropsBeyondItsByteBound(t *testing.T) {
	tr, err := NewTCPTransport(TCPConfig{NodeID: 1, Addr: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h := &recordingHandler{down: make(chan NodeID, 1)}
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	big := func(g GroupID) *Batch {
		return &Batch{Messages: []Envelope{{Group: g, Msg: &pb.Message{Type: pb.MsgApp.Enum(),
			Entries: []*pb.Entry{{Data: make([]byte, 1<<20)}}}}}}
	}
	fit := base.TransportQueueBytesMax / batchBytes(big(0))
	for g := range fit {
		tr.Send(2, big(GroupID(g)))
	}
	h.mu.Lock()
	dropped := len(h.unreachable)
	h.mu.Unlock()
	if dropped != 0 {
		t.Fatalf("%d batches dropped within the byte bound", dropped)
	}
	tr.Send(2, big(99999))
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.unreachable) != 1 || h.unreachable[0] != 99999 {
		t.Errorf("beyond the byte bound: unreachable %v, want [99999]", h.unreachable)
	}
}

// blockingHandler holds every snapshot stream until released.
type blockingHandler struct {
	recordingHandler
	release   chan struct{}
	got       chan int
	connected chan struct{}
	once      sync.Once
}

func (h *blockingHandler) HandleBatch(from NodeID, b *Batch) {
	h.once.Do(func() { close(h.connected) })
}

func (h *blockingHandler) ReceiveSnapshot(from NodeID, r io.Reader) error {
	b, err := io.ReadAll(r)
	h.got <- len(b)
	<-h.release
	return err
}

func TestSnapshotStreamsPerPeerAreBounded(t *testing.T) {
	book := &addrBook{addrs: map[NodeID]string{}}
	h2 := &blockingHandler{recordingHandler: recordingHandler{down: make(chan NodeID, 1)}, release: make(chan struct{}), got: make(chan int, 8), connected: make(chan struct{})}
	tr2, err := NewTCPTransport(TCPConfig{NodeID: 2, Addr: "127.0.0.1:0", Logger: quiet, Resolve: book.resolve})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Start(h2); err != nil {
		t.Fatal(err)
	}
	defer tr2.Stop()
	book.mu.Lock()
	book.addrs[2] = tr2.Addr().String()
	book.mu.Unlock()
	tr1, err := NewTCPTransport(TCPConfig{NodeID: 1, Addr: "127.0.0.1:0", Logger: quiet, Resolve: book.resolve})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr1.Start(&recordingHandler{down: make(chan NodeID, 1)}); err != nil {
		t.Fatal(err)
	}
	defer tr1.Stop()
	payload := bytes.Repeat([]byte{7}, base.SnapshotChunkBytes*5/2) // two and a half chunks
	results := make(chan error, base.SnapshotStreamsMax+1)
	send := func() {
		tr1.SendSnapshot(2, &OutgoingSnapshot{Group: 1,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil },
			Done: func(err error) { results <- err }})
	}
	tr1.Send(2, &Batch{}) // connect, and wait until the batch arrived
	<-h2.connected
	for range base.SnapshotStreamsMax {
		send()
	}
	for range base.SnapshotStreamsMax {
		if n := <-h2.got; n != len(payload) {
			t.Errorf("receiver got %d bytes, want %d", n, len(payload))
		}
	}
	send() // one more than the bound, while the others are held
	if err := <-results; err == nil {
		t.Errorf("stream beyond SnapshotStreamsMax accepted")
	}
	close(h2.release)
	for range base.SnapshotStreamsMax {
		if err := <-results; err != nil {
			t.Errorf("stream within the bound: %v", err)
		}
	}
}

func TestSnapshotReaderRefusesChunksOverTheChunkBound(t *testing.T) {
	for _, n := range []int{base.SnapshotChunkBytes, base.SnapshotChunkBytes + 1} {
		var buf bytes.Buffer
		w := newSnapWriter(&buf, &snapHeader{Group: 1, Index: 1, Term: 1, RetainFrom: 2, ConfState: &pb.ConfState{}})
		w.rawChunk(make([]byte, n))
		w.close()
		sr, err := newSnapReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err == nil {
			err = sr.finish()
		}
		if ok := err == nil; ok != (n <= base.SnapshotChunkBytes) {
			t.Errorf("chunk of %d bytes: err %v", n, err)
		}
	}
}

func TestGatherWaitsAtMostRaftProposalGatherMax(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	e := &Engine{clock: clock, stop: make(chan struct{}), cfg: Config{ProposalGather: base.RaftProposalGatherMax}}
	l := newLoop(e, 0)
	l.lastProposals, l.lastSynced = 8, true
	var timer base.Timer
	done := make(chan struct{})
	go func() {
		l.gather(&timer)
		close(done)
	}()
	for clock.ActiveTimers() == 0 { // gather armed its deadline
		runtimeYield()
	}
	clock.Advance(base.RaftProposalGatherMax - time.Nanosecond)
	select {
	case <-done:
		t.Fatalf("gather returned before RaftProposalGatherMax passed, with nothing queued")
	default:
	}
	clock.Advance(time.Nanosecond)
	<-done // at the bound it returns
}

// TestGatherWaitsForTheLastBatchOnTopOfThoseWaiting: the proposers of the
// last batch (8) come back on top of the 3 that were already waiting, so
// gather returns at 11 requests, without waiting for its deadline, and not
// at 8 (which left the 3 latecomers' proposers out of every batch and made
// batches alternate).
func TestGatherWaitsForTheLastBatchOnTopOfThoseWaiting(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	e := &Engine{clock: clock, stop: make(chan struct{}), cfg: Config{ProposalGather: base.RaftProposalGatherMax}}
	l := newLoop(e, 0)
	l.lastProposals, l.lastSynced = 8, true
	for range 3 {
		l.enqueueRequest(&request{kind: reqPropose})
	}
	<-l.wakeCh // the enqueues' wake-up, consumed as an iteration would
	var timer base.Timer
	done := make(chan struct{})
	go func() {
		l.gather(&timer)
		close(done)
	}()
	for clock.ActiveTimers() == 0 { // gather armed its deadline
		runtimeYield()
	}
	for range 5 {
		l.enqueueRequest(&request{kind: reqPropose})
	}
	if got := len(l.wakeCh); got != 0 {
		t.Errorf("wake-ups pending with 8 of 11 requests: got %d, want 0 (gather is woken at its count)", got)
	}
	clock.Advance(base.RaftProposalGatherMax - time.Nanosecond)
	select {
	case <-done:
		t.Fatalf("gather returned at 8 requests, want it to wait for 11")
	default:
	}
	for range 3 {
		l.enqueueRequest(&request{kind: reqPropose})
	}
	<-done // 11: the last batch's proposers are back
	l.mu.Lock()
	want := l.gatherWant
	l.mu.Unlock()
	if want != 0 {
		t.Errorf("gatherWant after gather: got %d, want 0 (every request wakes the loop again)", want)
	}
}

func runtimeYield() { runtime.Gosched() }

func cacheEntries(first uint64, n, size int) []*pb.Entry {
	var out []*pb.Entry
	for i := range n {
		out = append(out, &pb.Entry{Index: new(first + uint64(i)), Term: new(uint64(1)), Data: make([]byte, size)})
	}
	return out
}

func TestEntryCacheHoldsUpToItsByteBound(t *testing.T) {
	var c entryCache
	const size = 1 << 10
	fit := base.RaftEntryCacheBytesMax / size
	c.add(cacheEntries(1, fit, size))
	if got, ok := c.get(1, uint64(fit)+1, ^uint64(0)); !ok || len(got) != fit {
		t.Fatalf("cache of exactly RaftEntryCacheBytesMax: got %d entries, %v", len(got), ok)
	}
	c.add(cacheEntries(uint64(fit)+1, 1, size)) // one more: the oldest goes
	if _, ok := c.get(1, 2, ^uint64(0)); ok {
		t.Errorf("entry 1 still cached beyond the byte bound")
	}
	if got, ok := c.get(2, uint64(fit)+2, ^uint64(0)); !ok || len(got) != fit {
		t.Errorf("after the bound: got %d entries, %v, want %d", len(got), ok, fit)
	}
	// A conflicting append replaces the tail; returned slices are copies.
	held, _ := c.get(10, 12, ^uint64(0))
	c.add([]*pb.Entry{{Index: new(uint64(11)), Term: new(uint64(2))}})
	if got, ok := c.get(11, 12, ^uint64(0)); !ok || got[0].GetTerm() != 2 {
		t.Errorf("after a conflicting append: %v %v", got, ok)
	}
	if _, ok := c.get(12, 13, ^uint64(0)); ok {
		t.Errorf("entries after the conflict are still cached")
	}
	c.dropThrough(11)
	if held[0].GetIndex() != 10 || held[1].GetIndex() != 11 {
		t.Errorf("dropping from the cache changed a slice it had returned: %v", held)
	}
	if got, ok := c.get(5, 7, 1); ok {
		t.Errorf("dropped entries served: %v", got)
	}
}
