package broker

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/routing"
	"github.com/ferry-mq/ferry/internal/stream"
)

// Committed offsets expire as Kafka 2.1+ expires them (KIP-211): the
// offsets of a group with members never expire; those of an empty group
// expire offsets.retention after it became empty (or after the commit, if
// later); a standalone consumer's (no members) after its commit.
//
// The offsets live in the partitions, the membership in the coordinator,
// so the coordinator's leader tells the partitions: a stream.MarkGroup
// command (has members / became empty at T) to each partition holding
// the group's offsets, at every change between Empty and not Empty, and
// to a partition where a member of a group with members commits for the
// first time. The partition cannot be asked what it was told last (the
// stream state machine keeps it but does not expose it), so the leader
// remembers what it sent, bounded by BrokerGroupMarksMax (group,
// partition) pairs; past the bound a member's commit is followed by a
// mark every time. docs/kafka.md ("Offsets expiry") has the costs and
// what a leader change can lose.

// groupMarker is the part of a coordinator's leader runtime that sends
// MarkGroup commands. Lock order: coordinatorFSM.mu before mu (effects
// arrive with the FSM locked).
type groupMarker struct {
	b    *Broker
	fsm  *coordinatorFSM
	g    GroupID
	kick chan struct{} // size one: one pending pass is enough
	// max bounds tracked; BrokerGroupMarksMax, lowered by tests.
	max int

	mu      sync.Mutex
	groups  map[string]*groupMarks // guarded by mu: groups not Dead that this leader has seen
	dirty   map[string]struct{}    // guarded by mu: groups with partitions to tell; a subset of groups' keys
	tracked int                    // guarded by mu: partitions summed over groups
}

// groupMarks is what one group's partitions should be told, and what
// each was told.
type groupMarks struct {
	want markState
	// scan asks the next pass to look for the group's offsets in the
	// partitions with a replica on this node: a membership change must
	// reach offsets committed before this leader started, or by a
	// standalone consumer.
	scan  bool
	parts map[GroupID]markState // the partitions known to hold the group's offsets, and what they were told
}

// markState is a group's membership as a MarkGroup says it.
type markState struct {
	sent    bool  // in parts: false until a mark was applied
	active  bool  // the group has members
	emptyMs int64 // when it became empty, for !active
}

func (m markState) same(o markState) bool {
	return m.active == o.active && (m.active || m.emptyMs == o.emptyMs)
}

// told reports whether a partition in state m has applied a mark saying
// want.
func (m markState) told(want markState) bool { return m.sent && m.same(want) }

func newGroupMarker(b *Broker, f *coordinatorFSM, g GroupID) *groupMarker {
	return &groupMarker{b: b, fsm: f, g: g, kick: make(chan struct{}, 1), max: base.BrokerGroupMarksMax,
		groups: map[string]*groupMarks{}, dirty: map[string]struct{}{}}
}

// adopt starts tracking the groups a new leader finds with members once
// the coordinator has replayed its log: their partitions are scanned and
// marked once, in case a mark was lost with the previous leader (or was
// never sent, by a Ferry that did not mark). Groups an effect already
// reported are left as the effect set them.
func (mk *groupMarker) adopt(ctx context.Context) error {
	if _, err := mk.b.awaitLeader(ctx, mk.g, 0); err != nil {
		return err
	}
	mk.fsm.mu.Lock()
	defer mk.fsm.mu.Unlock()
	mk.mu.Lock()
	defer mk.mu.Unlock()
	for _, g := range mk.fsm.c.List() {
		if g.State == stream.GroupEmpty || g.State == stream.GroupDead || mk.groups[g.Group] != nil {
			continue
		}
		mk.groups[g.Group] = &groupMarks{want: markState{active: true}, scan: true, parts: map[GroupID]markState{}}
		mk.dirty[g.Group] = struct{}{}
	}
	return nil
}

// stateChanged follows a GroupStateChanged effect (FSM locked).
func (mk *groupMarker) stateChanged(x stream.GroupStateChanged) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	m := mk.groups[x.Group]
	if x.State == stream.GroupDead {
		if m != nil {
			mk.tracked -= len(m.parts)
			delete(mk.groups, x.Group)
			delete(mk.dirty, x.Group)
		}
		return
	}
	want := markState{active: x.State != stream.GroupEmpty}
	if !want.active {
		want.emptyMs = x.Now
	}
	if m == nil {
		m = &groupMarks{parts: map[GroupID]markState{}}
		mk.groups[x.Group] = m
	} else if m.want.same(want) {
		return // a rebalance step: still with members
	}
	m.want, m.scan = want, true
	mk.dirty[x.Group] = struct{}{}
	kick(mk.kick)
}

// noteCommit follows a commit by a member of group to partition part. It
// reports whether the caller must send the mark itself: the group has
// members and the partition could not be tracked (BrokerGroupMarksMax).
func (mk *groupMarker) noteCommit(group string, part GroupID) (markNow bool) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	m := mk.groups[group]
	if m == nil || !m.want.active {
		// Unknown here (no members) or empty: an unmarked offset
		// expires after its commit, which is what Kafka does then.
		return false
	}
	st, ok := m.parts[part]
	if ok && st.told(m.want) {
		return false
	}
	if !ok {
		if mk.tracked >= mk.max {
			return true
		}
		m.parts[part] = markState{}
		mk.tracked++
	}
	mk.dirty[group] = struct{}{}
	kick(mk.kick)
	return false
}

// forget drops what was sent to part about group, whose offset there was
// deleted: a later commit creates an unmarked offset, which must be
// marked again.
func (mk *groupMarker) forget(group string, part GroupID) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if m := mk.groups[group]; m != nil {
		if _, ok := m.parts[part]; ok {
			delete(m.parts, part)
			mk.tracked--
		}
	}
}

// run sends marks until ctx ends: at every kick, and after a failure
// every BrokerGroupMarkRetryInterval.
func (mk *groupMarker) run(ctx context.Context) {
	if mk.adopt(ctx) != nil {
		return // ctx ended: no longer the leader
	}
	kick(mk.kick)
	var retry base.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	var retryC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-mk.kick:
		case <-retryC:
			retryC = nil
		}
		if !mk.pass(ctx) || retryC != nil {
			continue
		}
		if retry == nil {
			retry = mk.b.clock.NewTimer(base.BrokerGroupMarkRetryInterval)
		} else {
			retry.Reset(base.BrokerGroupMarkRetryInterval)
		}
		retryC = retry.C()
	}
}

// markWork is one group's marks to send in a pass.
type markWork struct {
	group string
	want  markState
	scan  bool
	parts []GroupID
}

// pass sends what the dirty groups' partitions have not been told; it
// reports whether something failed and must be retried.
func (mk *groupMarker) pass(ctx context.Context) (failed bool) {
	work := mk.takeWork()
	var scanFor []string
	for _, w := range work {
		if w.scan {
			scanFor = append(scanFor, w.group)
		}
	}
	found, complete := mk.b.localOffsetHolders(ctx, scanFor)
	if !complete {
		mk.rescan(scanFor)
		failed = true
	}
	for i := range work {
		w := &work[i]
		if w.scan {
			w.parts = mk.adoptParts(w.group, w.want, w.parts, found[w.group])
		}
		for _, p := range w.parts {
			if ctx.Err() != nil {
				return false
			}
			cmd := stream.MarkGroup{Now: mk.b.nowMs(), Group: w.group, Empty: !w.want.active}
			if !w.want.active {
				cmd.Now = w.want.emptyMs
			}
			err := mk.b.proposePartition(ctx, p, cmd)
			if mk.record(w.group, p, w.want, err) {
				failed = true
			}
		}
	}
	if len(work) > 0 {
		mk.b.activity.Signal() // for whoever waits for the marks (tests)
	}
	return failed
}

// takeWork clears the dirty set and returns, by group id, what to send.
func (mk *groupMarker) takeWork() []markWork {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	work := make([]markWork, 0, len(mk.dirty))
	for g := range mk.dirty {
		m := mk.groups[g]
		if m == nil {
			base.Bugf("broker: consumer group %q is marked dirty but not tracked", g)
		}
		w := markWork{group: g, want: m.want, scan: m.scan}
		m.scan = false
		for p, st := range m.parts {
			if !st.told(m.want) {
				w.parts = append(w.parts, p)
			}
		}
		slices.Sort(w.parts)
		work = append(work, w)
	}
	clear(mk.dirty)
	slices.SortFunc(work, func(a, b markWork) int { return cmp.Compare(a.group, b.group) })
	return work
}

// adoptParts adds the partitions a scan found to the group's tracked ones
// (while the bound allows) and returns parts with every found partition
// not yet told want.
func (mk *groupMarker) adoptParts(group string, want markState, parts, found []GroupID) []GroupID {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	m := mk.groups[group]
	if m == nil {
		return parts
	}
	for _, p := range found {
		st, ok := m.parts[p]
		switch {
		case ok && st.told(want):
			continue // told already
		case ok && slices.Contains(parts, p):
			continue
		case !ok && mk.tracked < mk.max:
			m.parts[p] = markState{}
			mk.tracked++
		}
		parts = append(parts, p)
	}
	return parts
}

// record notes the outcome of telling part want about group, and reports
// whether it must be retried. A partition gone (its stream deleted) is
// forgotten; another failure leaves the group dirty (and to be scanned
// again when the partition was not tracked).
func (mk *groupMarker) record(group string, part GroupID, want markState, err error) (retry bool) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	m := mk.groups[group]
	if m == nil {
		return false // Dead since: nothing to tell any more
	}
	_, tracked := m.parts[part]
	switch {
	case err == nil:
		if tracked {
			want.sent = true
			m.parts[part] = want
		}
		return false
	case base.CodeOf(err) == base.CodeNotFound:
		if tracked {
			delete(m.parts, part)
			mk.tracked--
		}
		return false
	}
	if !tracked {
		m.scan = true
	}
	mk.dirty[group] = struct{}{}
	mk.b.log.Warn("broker: telling a partition about a consumer group's members failed; retrying",
		"group", group, "partition_group", part, "err", err)
	return true
}

// rescan asks the next pass to scan groups again: a replica was not
// ready to be read.
func (mk *groupMarker) rescan(groups []string) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	for _, g := range groups {
		if m := mk.groups[g]; m != nil {
			m.scan = true
			mk.dirty[g] = struct{}{}
		}
	}
}

// localOffsetHolders returns, for each of groups, the partitions the
// controller places on this node that hold a committed offset of it. A
// replica is read once it is open and has replayed its log (after a
// restart the reconciler opens it, and its first read goes through the
// group, as awaitLeader does), waiting at most
// BrokerGroupMarkRetryInterval for each; complete is false when one was
// skipped.
func (b *Broker) localOffsetHolders(ctx context.Context, groups []string) (found map[string][]GroupID, complete bool) {
	if len(groups) == 0 {
		return nil, true
	}
	var placed []controller.GroupInfo
	b.ctrl.read(func(c *controller.Controller) { placed = c.Groups(controller.NodeID(b.node)) })
	found, complete = map[string][]GroupID{}, true
	for _, gi := range placed {
		if gi.Entity.Kind != routing.Stream {
			continue
		}
		id := GroupID(gi.Group)
		lg := b.group(id)
		if lg == nil || !lg.replayed.Load() {
			wctx, cancel := base.WithTimeout(ctx, b.clock, base.BrokerGroupMarkRetryInterval)
			_, err := b.awaitLeader(wctx, id, 0)
			cancel()
			if lg = b.group(id); err != nil || lg == nil || !lg.replayed.Load() {
				complete = false
				continue
			}
		}
		lg.fsm.(*partitionFSM).with(func(p *stream.Partition) {
			for _, g := range groups {
				if _, ok := p.CommittedOffset(g); ok {
					found[g] = append(found[g], id)
				}
			}
		})
	}
	return found, complete
}
