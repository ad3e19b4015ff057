package main

// The HTTP API's loadgen.Target for `ferry bench`. Its AMQP 0-9-1 and
// Kafka targets are internal/loadgen's, shared with bench/driver (see
// benchOpts.target).

import (
	"context"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

// --- HTTP

type httpTarget struct{ o *clientOpts }

func (t *httpTarget) Connect(ctx context.Context) (loadgen.Session, error) {
	cl, err := t.o.client()
	if err != nil {
		return nil, err
	}
	// One connection pool per session, as separate clients would have.
	cl.http = &http.Client{Timeout: t.o.timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return &httpSession{o: t.o, cl: cl, confirms: loadgen.NewConfirmer()}, nil
}

type httpSession struct {
	o        *clientOpts
	cl       *apiClient
	confirms *loadgen.Confirmer
}

func (s *httpSession) Declare(ctx context.Context, topo loadgen.Topology) error {
	q := s.o.tenantQuery()
	if err := s.cl.call(ctx, "DELETE", pathOf("/api/exchanges", topo.Route), q, nil, nil); err != nil && base.CodeOf(err) != base.CodeNotFound {
		return err
	}
	if err := s.cl.call(ctx, "PUT", pathOf("/api/exchanges", topo.Route), q, map[string]any{"type": "fanout"}, nil); err != nil {
		return err
	}
	for _, name := range topo.Queues {
		if err := s.cl.call(ctx, "DELETE", pathOf("/api/queues", name), q, nil, nil); err != nil && base.CodeOf(err) != base.CodeNotFound {
			return err
		}
		if err := s.cl.call(ctx, "PUT", pathOf("/api/queues", name), q, nil, nil); err != nil {
			return err
		}
		if err := s.cl.call(ctx, "POST", "/api/bindings", q, map[string]any{"source": topo.Route, "destination": name}, nil); err != nil {
			return err
		}
	}
	return nil
}

// Publish posts the message and waits for the answer (an HTTP publish
// answers once the message is durable); done is called by the session's
// Confirmer, after Publish returned.
func (s *httpSession) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	var out struct {
		Confirmed int `json:"confirmed"`
	}
	msg := map[string]any{"body": base64.StdEncoding.EncodeToString(body), "body_encoding": "base64"}
	err := s.cl.call(ctx, "POST", pathOf("/api/exchanges", route)+"/publish", s.o.tenantQuery(),
		map[string]any{"messages": []any{msg}}, &out)
	if err == nil && out.Confirmed != 1 {
		err = loadgen.ErrNacked
	}
	return s.confirms.Add(ctx, func(context.Context) error { return err }, done)
}

// Consume fetches up to prefetch messages with manual acks, handles them
// and acks them; an empty queue is polled every CLIPollInterval (HTTP has
// no push), which adds up to that much to the measured latency.
func (s *httpSession) Consume(ctx context.Context, queue string, prefetch int, handle func([]byte)) error {
	path := pathOf("/api/queues", queue)
	poll := time.NewTicker(base.CLIPollInterval)
	defer poll.Stop()
	for {
		var got struct {
			Messages []cliMessage `json:"messages"`
		}
		err := s.cl.call(ctx, "POST", path+"/get", s.o.tenantQuery(),
			map[string]any{"count": min(prefetch, base.AdminGetMessagesMax), "ack_mode": "manual", "encoding": "base64"}, &got)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		tokens := make([]string, 0, len(got.Messages))
		for i := range got.Messages {
			handle(got.Messages[i].bodyBytes())
			tokens = append(tokens, got.Messages[i].Token)
		}
		if len(tokens) > 0 {
			if err := s.cl.call(ctx, "POST", path+"/ack", s.o.tenantQuery(), map[string]any{"delivery_tokens": tokens}, nil); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
	}
}

func (s *httpSession) Close() error {
	s.confirms.Close()
	s.cl.http.CloseIdleConnections()
	return nil
}
