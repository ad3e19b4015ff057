package main

import (
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestInprocRefusesWorkloadsThatFillItsQueueUnread(t *testing.T) {
	for _, tc := range []struct {
		workload string
		messages uint64
		refused  bool
	}{
		{"publish", 0, true},
		{"drain", base.LoadgenMemQueueDepth + 1, true},
		{"drain", base.LoadgenMemQueueDepth, false},
		{"latency", 0, false},
		{"fanout", 0, false},
		{"queues", 0, false},
	} {
		o := options{target: "inproc", workload: tc.workload, messages: tc.messages, producers: 1, fanout: 2, queues: 2}
		_, err := newWorkload(o)
		if tc.refused {
			if err == nil || !strings.Contains(err.Error(), "inproc") {
				t.Errorf("%s of %d messages: got %v, want the inproc target refused", tc.workload, tc.messages, err)
			}
		} else if err != nil {
			t.Errorf("%s of %d messages: %v", tc.workload, tc.messages, err)
		}
	}
}

func TestOtherTargetsTakeAPublishWorkload(t *testing.T) {
	if _, err := newWorkload(options{target: "amqp", workload: "publish", producers: 1}); err != nil {
		t.Fatal(err)
	}
}
