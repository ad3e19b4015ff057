package broker

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/replication"
)

// Every command the broker proposes starts with one tag byte saying which
// state machine it is for, so that a group's log can carry commands of
// more than one kind later and a misrouted command is refused, not
// misread.
const (
	tagController byte = 'C'
	tagQueue      byte = 'Q'
	tagPartition  byte = 'S'
	tagGroup      byte = 'G'
	// tagEnqueue is a queue's data batch riding in a command, which the
	// queue applies exactly as the same batch proposed as a data batch
	// (its Refs name the command's entry). The queue's accumulator
	// proposed its batches so until 2026-11-21 (ProposeAsync was then the
	// only proposal answered by callback); it now proposes the data batch
	// itself (ProposeBuildAsync), and logs written before still hold
	// these entries, which the simulator keeps proposing among the others.
	tagEnqueue byte = 'B'
	// tagRelocate is a queue's Relocate command with the bodies it moves:
	// the command's length (uvarint), the command (queue.Encode), then a
	// data batch whose record k is the message Refs[k] (relocate.go).
	tagRelocate byte = 'R'
)

// controllerFSM is the metadata group's state machine: the controller's
// replicated state behind a RWMutex (Apply writes; the broker's queries
// read on any goroutine).
type controllerFSM struct {
	b *Broker

	mu sync.RWMutex
	c  *controller.Controller // guarded by mu

	revoke bool // guarded by mu: an applied command may have orphaned connections (revoke.go)

	applied atomic.Uint64 // the index of the last command applied
	gen     atomic.Uint64 // counts applied commands and restores

	notifyMu sync.Mutex
	notify   chan struct{} // guarded by notifyMu; closed and replaced on every change
}

func newControllerFSM(b *Broker) *controllerFSM {
	return &controllerFSM{b: b, c: controller.New(controller.Options{Directory: b.cfg.Directory}), notify: make(chan struct{})}
}

// ctrlResult is what a controller entry gives its proposer.
type ctrlResult struct {
	res controller.Result
	err error // the entry was not a controller command
}

func (r *ctrlResult) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.res.Err
}

func (f *controllerFSM) Apply(entries []replication.Entry, results []any) {
	f.mu.Lock()
	for i, e := range entries {
		results[i] = f.applyOne(e)
	}
	revoke := f.revoke
	f.revoke = false
	f.mu.Unlock()
	if len(entries) > 0 {
		f.applied.Store(entries[len(entries)-1].Index)
	}
	f.b.learnClusterID()
	f.changedNow()
	if revoke {
		f.b.revokeStale()
	}
}

func (f *controllerFSM) applyOne(e replication.Entry) *ctrlResult {
	if e.Kind != replication.KindCommand || len(e.Data) == 0 || e.Data[0] != tagController {
		return &ctrlResult{err: base.Errorf(base.CodeInvalidArgument, "broker: entry %d is not a controller command", e.Index)}
	}
	cmd, err := controller.Decode(e.Data[1:])
	if err != nil {
		return &ctrlResult{err: fmt.Errorf("broker: controller entry %d: %w", e.Index, err)}
	}
	res := f.c.Apply(cmd)
	f.revoke = f.revoke || (res.Err == nil && revokes(cmd))
	return &ctrlResult{res: res}
}

// changedNow wakes everything waiting for the controller state to change.
func (f *controllerFSM) changedNow() {
	f.gen.Add(1)
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
	kick(f.b.reconcileKick)
}

// changed returns a channel closed at the next change.
func (f *controllerFSM) changed() <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.notify
}

func (f *controllerFSM) Snapshot(w io.Writer) error {
	f.mu.RLock()
	data := f.c.Snapshot()
	f.mu.RUnlock()
	_, err := w.Write(data)
	return err
}

func (f *controllerFSM) Restore(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, base.SnapshotBytesMax))
	if err != nil {
		return err
	}
	c := controller.New(controller.Options{Directory: f.b.cfg.Directory})
	if err := c.Restore(data); err != nil {
		return err
	}
	f.mu.Lock()
	f.c = c
	f.mu.Unlock()
	f.b.learnClusterID()
	f.changedNow()
	f.b.revokeStale()
	return nil
}

// RetainFrom: the controller reads nothing back from its log.
func (f *controllerFSM) RetainFrom() uint64 { return 0 }

// read runs q with the controller state locked for reading; q must not
// keep references to the controller past its return.
func (f *controllerFSM) read(q func(c *controller.Controller)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	q(f.c)
}

func (f *controllerFSM) bootstrapped() bool {
	ok := false
	f.read(func(c *controller.Controller) { ok = len(c.Coordinators()) > 0 })
	return ok
}

// waitApplied returns once this replica has applied the command at index
// (or a later one), or ctx ends.
func (f *controllerFSM) waitApplied(ctx context.Context, index uint64) error {
	for {
		ch := f.changed()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return base.Errorf(base.CodeTimeout, "broker: the controller did not apply entry %d here in time: %w", index, ctx.Err())
		}
	}
}

// proposeController replicates a controller command and returns its
// result once this node has applied it: locally when this node leads the
// controller group, through the leader's node otherwise. The returned
// error is about the proposal (not leader, timeout...); the command's own
// refusal is in Result.Err. A change a client asks for goes through
// changeController instead.
func (b *Broker) proposeController(ctx context.Context, cmd controller.Command) (controller.Result, error) {
	res, _, err := b.proposeControllerAt(ctx, cmd)
	return res, err
}

// changeController is proposeController for a change a client asked for
// (a declaration, a binding, a user): once this node has applied it, it
// waits for the cluster's other nodes to apply it too (spreadController),
// so that the client, answered, finds the change through any node.
func (b *Broker) changeController(ctx context.Context, cmd controller.Command) (controller.Result, error) {
	res, index, err := b.proposeControllerAt(ctx, cmd)
	if err == nil && res.Err == nil {
		b.spreadController(ctx, index)
	}
	return res, err
}

// proposeControllerAt is proposeController also returning the command's
// index in the controller's log.
func (b *Broker) proposeControllerAt(ctx context.Context, cmd controller.Command) (controller.Result, uint64, error) {
	data, err := controller.Encode(cmd)
	if err != nil {
		return controller.Result{}, 0, err
	}
	payload := append([]byte{tagController}, data...)
	out, err := b.propose(ctx, controllerGroup, payload)
	if err != nil {
		return controller.Result{}, 0, err
	}
	if out.local != nil {
		r, ok := out.local.(*ctrlResult)
		if !ok {
			return controller.Result{}, 0, base.Errorf(base.CodeInternal, "broker: controller entry gave %T", out.local)
		}
		if r.err != nil {
			return controller.Result{}, 0, r.err
		}
		return r.res, out.index, nil
	}
	// Proposed through another node: wait until this replica has the
	// command, so that what the caller reads next reflects it.
	if err := b.ctrl.waitApplied(ctx, out.index); err != nil {
		return controller.Result{}, 0, err
	}
	return controller.Result{Err: out.err}, out.index, nil
}

// spreadController waits until every other node of the cluster has
// applied the controller's entry at index (opCtrlApplied), or
// Config.MetadataSpreadWait has passed. Every node looks queues,
// exchanges, bindings and users up in its own replica of the controller,
// which applies an entry a moment after the node that proposed it; with
// this wait, a client answered by one node (declare-ok, bind-ok) finds
// the change on any other, as RabbitMQ's metadata changes, transactions
// on every node, are. A node that is down, cut off or catching up is
// waited for no longer than the bound, and one the replication transport
// has declared down not at all: it applies the entry when it can, and
// until then answers as before it.
func (b *Broker) spreadController(ctx context.Context, index uint64) {
	if len(b.cfg.Peers) < 2 {
		return
	}
	ctx, cancel := base.WithTimeout(ctx, b.clock, b.cfg.MetadataSpreadWait)
	defer cancel()
	var req wireWriter
	req.uvarint(index)
	var wg sync.WaitGroup
	for _, p := range b.cfg.Peers {
		if p.ID == b.node || b.peers.isDown(p.ID) {
			continue
		}
		wg.Go(func() {
			resp, err := b.fwd.roundTrip(ctx, p.ID, opCtrlApplied, req.b)
			if err == nil {
				err = decodeErrResp(resp)
			}
			if err != nil {
				b.log.Debug("a node did not apply a metadata change in time", "node", p.ID, "index", index, "err", err)
			}
		})
	}
	wg.Wait()
}
