package replication

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/ferry-mq/ferry/internal/base"
)

// Snapshot streams share the peer's connection: the sender's goroutine
// cuts the stream into chunk frames of base.SnapshotChunkBytes and hands
// them to the connection's writer through a channel of
// base.SnapshotChunksBuffered frames (so it waits, not the engine); the
// receiver's reader passes chunks to a goroutine running
// Handler.ReceiveSnapshot through a channel of the same size (so a slow
// disk slows the sender through TCP), and answers with an ack frame.

var errStreamLost = base.Errorf(base.CodeUnavailable, "replication: snapshot stream's connection was lost")

type outStream struct {
	id, gen uint64
	result  chan error // size one: the ack or the connection's loss, whichever first
}

type inStream struct {
	id, gen uint64
	ch      chan []byte
	closed  bool // guarded by peer.mu: ch is closed
	failed  bool // guarded by peer.mu: aborted or the connection was lost
}

// SendSnapshot implements Transport.
func (t *TCPTransport) SendSnapshot(to NodeID, s *OutgoingSnapshot) {
	if t.ctx.Err() != nil {
		s.Done(base.Errorf(base.CodeStopped, "replication: transport stopped"))
		return
	}
	p := t.peer(to)
	p.mu.Lock()
	if len(p.out) >= base.SnapshotStreamsMax || p.conn == nil {
		busy := len(p.out)
		p.mu.Unlock()
		s.Done(base.Errorf(base.CodeUnavailable, "replication: node %d: %d snapshot streams in flight or not connected", to, busy))
		return
	}
	p.streamN++
	st := &outStream{id: p.streamN, gen: p.gen, result: make(chan error, 1)}
	p.out[st.id] = st
	p.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := p.stream(st, s)
		p.mu.Lock()
		delete(p.out, st.id)
		p.mu.Unlock()
		s.Done(err)
	}()
}

// stream sends one snapshot and waits for the receiver's ack.
func (p *peer) stream(st *outStream, s *OutgoingSnapshot) error {
	t := p.t
	rc, err := s.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := make([]byte, base.SnapshotChunkBytes)
	flags := byte(chunkFirst)
	for {
		n, err := io.ReadFull(rc, buf)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !last {
			p.sendChunk(st, chunkAbort|flags, nil)
			return err
		}
		if last {
			flags |= chunkLast
		}
		if err := p.sendChunk(st, flags, buf[:n]); err != nil {
			return err
		}
		if last {
			break
		}
		flags = 0
	}
	timer := t.clock.NewTimer(t.cfg.SnapshotAckTimeout)
	defer timer.Stop()
	select {
	case err := <-st.result:
		return err
	case <-t.ctx.Done():
		return errStreamLost
	case <-timer.C():
		return base.Errorf(base.CodeTimeout, "replication: node %d did not acknowledge a snapshot", p.id)
	}
}

func (p *peer) sendChunk(st *outStream, flags byte, data []byte) error {
	frame := appendFrame(nil, frameSnapChunk, func(b []byte) []byte {
		b = binary.AppendUvarint(b, st.id)
		b = append(b, flags)
		return append(b, data...)
	})
	select {
	case p.snapCh <- frame:
		return nil
	case err := <-st.result:
		return err
	case <-p.t.ctx.Done():
		return errStreamLost
	}
}

// receiveAck resolves an outgoing stream.
func (p *peer) receiveAck(payload []byte) {
	d := decoder{b: payload}
	id, status := d.uvarint(), d.u8()
	if d.err != nil {
		return
	}
	p.mu.Lock()
	st := p.out[id]
	p.mu.Unlock()
	if st == nil {
		return
	}
	var err error
	if status != 0 {
		err = base.Errorf(base.CodeUnavailable, "replication: node %d refused or failed to store a snapshot", p.id)
	}
	select {
	case st.result <- err:
	default:
	}
}

// receiveChunk routes a chunk to its stream, starting the stream's
// receiver on its first chunk. It blocks while the stream's buffer is full.
func (p *peer) receiveChunk(payload []byte, gen uint64) error {
	d := decoder{b: payload}
	id, flags := d.uvarint(), d.u8()
	if d.err != nil || flags&^(chunkFirst|chunkLast|chunkAbort) != 0 {
		return base.Errorf(base.CodeCorrupt, "replication: malformed snapshot chunk")
	}
	data := d.b
	p.mu.Lock()
	st := p.in[id]
	if flags&chunkFirst != 0 {
		if st != nil {
			p.mu.Unlock()
			return base.Errorf(base.CodeCorrupt, "replication: snapshot stream %d started twice", id)
		}
		if len(p.in) >= base.SnapshotStreamsMax {
			p.queueAckLocked(id, false)
			p.mu.Unlock()
			p.wake()
			return nil
		}
		st = &inStream{id: id, gen: gen, ch: make(chan []byte, base.SnapshotChunksBuffered)}
		p.in[id] = st
		p.startReceiver(st)
	}
	p.mu.Unlock()
	if st == nil || st.gen != gen {
		return nil // a stream of an earlier connection, or one refused above
	}
	if flags&chunkAbort == 0 && len(data) > 0 {
		select {
		case st.ch <- data:
		case <-p.t.ctx.Done():
			return nil
		}
	}
	if flags&(chunkLast|chunkAbort) != 0 {
		p.mu.Lock()
		st.failed = st.failed || flags&chunkAbort != 0
		p.closeStreamLocked(st)
		p.mu.Unlock()
	}
	return nil
}

func (p *peer) closeStreamLocked(st *inStream) {
	if !st.closed {
		st.closed = true
		close(st.ch)
	}
}

func (p *peer) queueAckLocked(id uint64, ok bool) {
	status := byte(1)
	if ok {
		status = 0
	}
	p.acks = append(p.acks, appendFrame(nil, frameSnapAck, func(b []byte) []byte {
		return append(binary.AppendUvarint(b, id), status)
	}))
}

// startReceiver runs Handler.ReceiveSnapshot over the stream's chunks and
// acknowledges the outcome. Called with p.mu held.
func (p *peer) startReceiver(st *inStream) {
	t := p.t
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := errors.New("no handler")
		if t.h != nil {
			err = t.h.ReceiveSnapshot(p.id, &chunkReader{p: p, st: st})
		}
		for range st.ch { // the handler may stop early; let the reader go on
		}
		p.mu.Lock()
		ok := err == nil && !st.failed
		delete(p.in, st.id)
		p.queueAckLocked(st.id, ok)
		p.mu.Unlock()
		p.wake()
	}()
}

type chunkReader struct {
	p   *peer
	st  *inStream
	cur []byte
}

func (r *chunkReader) Read(b []byte) (int, error) {
	for len(r.cur) == 0 {
		data, ok := <-r.st.ch
		if !ok {
			r.p.mu.Lock()
			failed := r.st.failed
			r.p.mu.Unlock()
			if failed {
				return 0, errStreamLost
			}
			return 0, io.EOF
		}
		r.cur = data
	}
	n := copy(b, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// failStreams fails the streams of a connection that ended.
func (p *peer) failStreams(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.out {
		if st.gen == gen {
			select {
			case st.result <- errStreamLost:
			default:
			}
		}
	}
	for _, st := range p.in {
		if st.gen == gen && !st.closed {
			st.failed = true
			p.closeStreamLocked(st)
		}
	}
}
