package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitReadyOverHTTPReturnsOnceReadyzAnswers200(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 { // not ready for the first two probes
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	err := waitReady(context.Background(), func(ctx context.Context) error { return probeHTTP(ctx, srv.URL+"/readyz") }, time.Minute)
	if err != nil {
		t.Fatalf("waitReady: got %v, want nil", err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("probes: got %d, want 3 (two answered 503, the third 200)", got)
	}
}

func TestProbeHTTPFailsOnAStatusOtherThan200(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	if err := probeHTTP(context.Background(), srv.URL); err == nil {
		t.Fatalf("probeHTTP against a 503: got nil, want an error")
	}
}
