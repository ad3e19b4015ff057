package kafka

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Group and topic administration against the real broker, through
// franz-go's admin client: what the test double cannot show, because the
// broker keeps a group's offsets in the partitions, its members in the
// coordinator, and validates topics in the controller.

// waitGroup polls DescribeGroups until cond holds (the group's state
// moves on the coordinator's own schedule), within the test's deadline.
func waitGroup(t *testing.T, adm *kadm.Client, group, what string, cond func(kadm.DescribedGroup) bool) kadm.DescribedGroup {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		dg, err := adm.DescribeGroups(ctx, group)
		if err == nil && cond(dg[group]) {
			return dg[group]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never became %s: last %+v %v", group, what, dg[group], err)
		case <-tick.C:
		}
	}
}

func TestBrokerStaticMemberLeavesByInstanceID(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	ctx := testCtx(t)
	createTopics(t, srv.addr, 1, "static-t")
	adm := kadm.NewClient(franzClient(t, srv.addr))
	cons := franzClient(t, srv.addr, kgo.ConsumerGroup("static-g"), kgo.InstanceID("inst-1"), kgo.ConsumeTopics("static-t"),
		kgo.SessionTimeout(30*time.Second), kgo.FetchMaxWait(100*time.Millisecond))
	joined := waitGroup(t, adm, "static-g", "Stable with inst-1", func(g kadm.DescribedGroup) bool {
		return g.State == "Stable" && len(g.Members) == 1 && g.Members[0].InstanceID != nil && *g.Members[0].InstanceID == "inst-1"
	})
	// A static member does not leave when it closes (KIP-345): it stays
	// until its session times out, or an admin removes it by instance id.
	cons.Close()
	if g := waitGroup(t, adm, "static-g", "still holding inst-1", func(kadm.DescribedGroup) bool { return true }); len(g.Members) != 1 {
		t.Fatalf("after the static member closed: %d members, want it kept", len(g.Members))
	}
	res, err := adm.LeaveGroup(ctx, kadm.LeaveGroup("static-g").InstanceIDs("inst-1", "inst-unknown"))
	if err != nil {
		t.Fatalf("LeaveGroup: %v", err)
	}
	if r := res["inst-1"]; r.Err != nil || r.MemberID != joined.Members[0].MemberID {
		t.Errorf("inst-1 left as member %q with %v, want success naming %q", r.MemberID, r.Err, joined.Members[0].MemberID)
	}
	if r := res["inst-unknown"]; !errors.Is(r.Err, kerr.UnknownMemberID) {
		t.Errorf("an unknown instance: got %v, want UNKNOWN_MEMBER_ID", r.Err)
	}
	waitGroup(t, adm, "static-g", "Empty", func(g kadm.DescribedGroup) bool { return g.State == "Empty" && len(g.Members) == 0 })
}

func TestBrokerOffsetDeleteKeepsTheTopicsMembersConsume(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	ctx := testCtx(t)
	createTopics(t, srv.addr, 1, "used", "unused")
	adm := kadm.NewClient(franzClient(t, srv.addr))
	// Committed while the group is empty: both topics.
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "used", Partition: 0, At: 1, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "unused", Partition: 0, At: 2, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "od-g", os); err != nil {
		t.Fatal(err)
	}
	cons := franzClient(t, srv.addr, kgo.ConsumerGroup("od-g"), kgo.ConsumeTopics("used"), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100*time.Millisecond))
	waitGroup(t, adm, "od-g", "Stable", func(g kadm.DescribedGroup) bool { return g.State == "Stable" && len(g.Members) == 1 })

	ts := kadm.TopicsSet{}
	ts.Add("used", 0)
	ts.Add("unused", 0)
	res, err := adm.DeleteOffsets(ctx, "od-g", ts)
	if err != nil {
		t.Fatalf("DeleteOffsets: %v", err)
	}
	if got := res["used"][0]; !errors.Is(got, kerr.GroupSubscribedToTopic) {
		t.Errorf("the consumed topic: got %v, want GROUP_SUBSCRIBED_TO_TOPIC", got)
	}
	if got := res["unused"][0]; got != nil {
		t.Errorf("the other topic: got %v, want deleted", got)
	}
	fetched, err := adm.FetchOffsets(ctx, "od-g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("used", 0); !ok || o.At != 1 {
		t.Errorf("the consumed topic's offset: %+v %v, want kept at 1", o, ok)
	}
	if o, ok := fetched.Lookup("unused", 0); ok && o.At >= 0 {
		t.Errorf("the other topic's offset: %+v, want deleted", o)
	}
	// With the member gone the group is empty and loses the rest.
	cons.Close()
	waitGroup(t, adm, "od-g", "Empty", func(g kadm.DescribedGroup) bool { return g.State == "Empty" })
	if res, err := adm.DeleteOffsets(ctx, "od-g", ts); err != nil || res.Error() != nil {
		t.Fatalf("DeleteOffsets of the empty group: %v %v", err, res.Error())
	}
	fetched, _ = adm.FetchOffsets(ctx, "od-g")
	if o, ok := fetched.Lookup("used", 0); ok && o.At >= 0 {
		t.Errorf("after the member left: %+v, want deleted", o)
	}
}

func TestBrokerDeleteGroupsDeletesStandaloneOffsetsAndForgetsTheGroup(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	ctx := testCtx(t)
	createTopics(t, srv.addr, 2, "solo-t")
	adm := kadm.NewClient(franzClient(t, srv.addr))
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "solo-t", Partition: 1, At: 3, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "solo", os); err != nil {
		t.Fatal(err)
	}
	res, err := adm.DeleteGroups(ctx, "solo", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if res["solo"].Err != nil {
		t.Errorf("a group with only committed offsets: %v, want deleted", res["solo"].Err)
	}
	if !errors.Is(res["nobody"].Err, kerr.GroupIDNotFound) {
		t.Errorf("a group with neither members nor offsets: %v, want GROUP_ID_NOT_FOUND", res["nobody"].Err)
	}
	fetched, _ := adm.FetchOffsets(ctx, "solo")
	if o, ok := fetched.Lookup("solo-t", 1); ok && o.At >= 0 {
		t.Errorf("after DeleteGroups: %+v, want no offset", o)
	}
	ts := kadm.TopicsSet{}
	ts.Add("solo-t", 0, 1)
	if _, err := adm.DeleteOffsets(ctx, "solo", ts); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("OffsetDelete of the deleted group: %v, want GROUP_ID_NOT_FOUND", err)
	}
}

func TestBrokerValidateOnlyChecksEverythingAndChangesNothing(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	ctx := testCtx(t)
	adm := kadm.NewClient(franzClient(t, srv.addr))
	retention := "3600000"
	bad := "soon"
	// CreateTopics: a bad value is refused as the real creation would
	// refuse it; a good request creates nothing.
	cr, err := adm.ValidateCreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": &bad}, "vo")
	if err != nil || !errors.Is(cr["vo"].Err, kerr.InvalidConfig) {
		t.Errorf("validate-only create with retention.ms=%s: %+v %v, want INVALID_CONFIG", bad, cr["vo"], err)
	}
	cr, err = adm.ValidateCreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": &retention}, "vo")
	if err != nil || cr["vo"].Err != nil {
		t.Errorf("validate-only create: %+v %v, want success", cr["vo"], err)
	}
	if md, _ := adm.ListTopics(ctx, "vo"); md.Has("vo") {
		t.Fatalf("validate-only create created the topic")
	}
	createTopics(t, srv.addr, 2, "vo")
	cr, _ = adm.ValidateCreateTopics(ctx, 1, 1, nil, "vo")
	if !errors.Is(cr["vo"].Err, kerr.TopicAlreadyExists) {
		t.Errorf("validate-only create of an existing topic: %v, want TOPIC_ALREADY_EXISTS", cr["vo"].Err)
	}
	// CreatePartitions: fewer than now is refused; more adds none.
	pr, err := adm.ValidateUpdatePartitions(ctx, 1, "vo")
	if err != nil || pr["vo"].Err == nil {
		t.Errorf("validate-only shrink to 1 partition: %+v %v, want refused", pr["vo"], err)
	}
	pr, err = adm.ValidateUpdatePartitions(ctx, 4, "vo")
	if err != nil || pr["vo"].Err != nil {
		t.Errorf("validate-only grow to 4: %+v %v, want success", pr["vo"], err)
	}
	if md, _ := adm.ListTopics(ctx, "vo"); len(md["vo"].Partitions) != 2 {
		t.Errorf("after validate-only grow: %d partitions, want 2", len(md["vo"].Partitions))
	}
	// AlterConfigs: a bad value is refused, a good one changes nothing.
	ar, err := adm.ValidateAlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &bad}}, "vo")
	if err != nil || len(ar) != 1 || ar[0].Err == nil {
		t.Errorf("validate-only alter with retention.ms=%s: %+v %v, want refused", bad, ar, err)
	}
	ar, err = adm.ValidateAlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &retention}}, "vo")
	if err != nil || len(ar) != 1 || ar[0].Err != nil {
		t.Errorf("validate-only alter: %+v %v, want success", ar, err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "vo")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" && c.Source == kmsgDynamicTopicConfig {
			t.Errorf("validate-only alter set retention.ms to %v", c.MaybeValue())
		}
	}
}

// kmsgDynamicTopicConfig is Kafka's DYNAMIC_TOPIC_CONFIG config source.
const kmsgDynamicTopicConfig = 1

func TestBrokerIdempotentProducerFencedByANewerEpoch(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	createTopics(t, srv.addr, 1, "fence")
	c := dialRaw(t, srv.addr)
	pid := c.initProducerID()
	produce := func(epoch int16, seq int32) protocol.ErrorCode {
		b := buildBatch(t, 2, pid, seq)
		binary.BigEndian.PutUint16(b[51:], uint16(epoch)) // producerEpoch
		binary.BigEndian.PutUint32(b[17:], batch.Checksum(b[batch.CRCStart:]))
		return protocol.ErrorCode(produceOne(c, "fence", b, -1, 9).Responses[0].PartitionResponses[0].ErrorCode)
	}
	if code := produce(0, 0); code != protocol.ErrorCodeNone {
		t.Fatalf("epoch 0: %v", code)
	}
	if code := produce(1, 0); code != protocol.ErrorCodeNone {
		t.Fatalf("epoch 1 from sequence 0: %v, want accepted", code)
	}
	if code := produce(0, 2); code != protocol.ErrorCodeInvalidProducerEpoch {
		t.Errorf("epoch 0 after epoch 1: got %v, want INVALID_PRODUCER_EPOCH", code)
	}
	if code := produce(1, 5); code != protocol.ErrorCodeOutOfOrderSequenceNumber {
		t.Errorf("a sequence gap in epoch 1: got %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
	}
}
