package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// produceCall gathers the outcomes of one Produce request's partitions.
// The backend calls done from its own goroutines; the last outcome
// completes the request.
type produceCall struct {
	c      *conn
	r      *request
	resp   protocol.ProduceResponse
	acks   int16
	cancel context.CancelFunc

	mu      sync.Mutex
	waiting int // guarded by mu: outcomes still to come, plus one until all are submitted
}

func handleProduce(c *conn, r *request) error {
	var req protocol.ProduceRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	call := &produceCall{c: c, r: r, acks: req.Acks, waiting: 1}
	call.resp.Default()
	timeout := time.Duration(max(req.TimeoutMs, 0)) * time.Millisecond
	var ctx context.Context
	if req.Acks == 0 {
		ctx, call.cancel = context.WithCancel(c.ctx)
	} else {
		ctx, call.cancel = context.WithTimeout(c.ctx, min(max(timeout, time.Millisecond), base.KafkaProduceTimeoutMax))
	}
	refuse := protocol.ErrorCodeNone
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		refuse = protocol.ErrorCodeInvalidRequiredAcks
	case req.TransactionalId != nil:
		refuse = protocol.ErrorCodeTransactionalIdAuthorizationFailed
	}
	call.resp.Responses = make([]protocol.ProduceResponseTopicProduceResponse, len(req.TopicData))
	for ti := range req.TopicData {
		td := &req.TopicData[ti]
		tr := &call.resp.Responses[ti]
		tr.Name = td.Name
		tr.PartitionResponses = make([]protocol.ProduceResponsePartitionProduceResponse, len(td.PartitionData))
		topicErr := refuse
		if topicErr == protocol.ErrorCodeNone {
			if err := c.sess.Authorize(auth.ActionWrite, td.Name); err != nil {
				topicErr = errorCode(err, scopeData)
			}
		}
		for pi := range td.PartitionData {
			pd := &td.PartitionData[pi]
			pr := &tr.PartitionResponses[pi]
			pr.Default()
			pr.Index = pd.Index
			if topicErr != protocol.ErrorCodeNone {
				pr.ErrorCode = int16(topicErr)
				call.noteFailure()
				continue
			}
			var err error
			_, c.scratch, err = validateBatch(pd.Records, c.scratch)
			if err != nil {
				call.fail(pr, err)
				continue
			}
			call.submit(ctx, PartitionRef{Stream: td.Name, Partition: pd.Index}, pd.Records, pr)
		}
	}
	if len(c.scratch) > base.KafkaReadBufferBytes {
		c.scratch = nil // a compression bomb's buffer is not kept
	}
	if req.Acks == 0 {
		// No response at all, as Kafka: the producer does not read one.
		r.slot.complete(nil, false)
	}
	call.settle()
	return nil
}

// submit hands one validated batch to the backend.
func (call *produceCall) submit(ctx context.Context, p PartitionRef, b []byte, pr *protocol.ProduceResponsePartitionProduceResponse) {
	call.mu.Lock()
	call.waiting++
	call.mu.Unlock()
	call.c.sess.ProduceBatch(ctx, p, b, call.acks, func(res ProduceResult) {
		if res.Err != nil {
			call.fail(pr, res.Err)
		} else {
			pr.BaseOffset, pr.LogAppendTimeMs, pr.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
		}
		call.settle()
	})
}

// fail records a partition's failure. With acks 0 a failure closes the
// connection: the producer reads no response, and Kafka tells it this way.
func (call *produceCall) fail(pr *protocol.ProduceResponsePartitionProduceResponse, err error) {
	pr.ErrorCode = int16(errorCode(err, scopeData))
	if call.r.hdr.APIVersion >= 8 {
		pr.ErrorMessage = errorMessage(err)
	}
	call.noteFailure()
}

func (call *produceCall) noteFailure() {
	if call.acks == 0 {
		call.c.kill("acks=0 produce failed")
	}
}

// settle counts one outcome; the last one answers the request.
func (call *produceCall) settle() {
	call.mu.Lock()
	call.waiting--
	last := call.waiting == 0
	call.mu.Unlock()
	if !last {
		return
	}
	call.cancel()
	if call.acks != 0 {
		call.c.respond(call.r, &call.resp)
	}
}

func handleInitProducerID(c *conn, r *request) error {
	var req protocol.InitProducerIdRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	var resp protocol.InitProducerIdResponse
	resp.Default()
	if req.TransactionalId != nil {
		// Transactions are not supported; Kafka answers a transactional
		// id the client may not use this way, and clients stop there.
		resp.ErrorCode = int16(protocol.ErrorCodeTransactionalIdAuthorizationFailed)
		c.respond(r, &resp)
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	id, epoch, err := c.sess.InitProducerID(ctx, req.ProducerId, req.ProducerEpoch)
	if err != nil {
		resp.ErrorCode = int16(errorCode(err, scopeData))
	} else {
		resp.ProducerId, resp.ProducerEpoch = id, epoch
	}
	c.respond(r, &resp)
	return nil
}
