package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Issue 6 through IBM/sarama against the real broker: ListOffsets inside a
// compressed batch, validate-only, OffsetDelete, DeleteGroups and the
// removal of a static member by instance id.

func TestSaramaListOffsetsInsideACompressedBatch(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	cfg := saramaConfig(sarama.V3_6_0_0)
	cfg.Producer.Compression = sarama.CompressionGZIP
	cfg.Producer.Flush.Messages = 5 // the five messages go as one batch
	cfg.Producer.Flush.Frequency = time.Minute
	cl := saramaClient(t, srv.addr, cfg)
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("sarama-gz", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}, false); err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewAsyncProducerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 5 {
		prod.Input() <- &sarama.ProducerMessage{Topic: "sarama-gz", Value: sarama.StringEncoder("compressible value compressible value"),
			Timestamp: base.Add(time.Duration(i) * time.Minute)}
	}
	offsets := map[time.Time]int64{}
	ctx := testCtx(t)
	for range 5 {
		select {
		case m := <-prod.Successes():
			offsets[m.Timestamp] = m.Offset
		case e := <-prod.Errors():
			t.Fatalf("produce: %v", e.Err)
		case <-ctx.Done():
			t.Fatal("the five messages were not acknowledged")
		}
	}
	want := offsets[base.Add(3*time.Minute)]
	if got, err := cl.GetOffset("sarama-gz", 0, base.Add(150*time.Second).UnixMilli()); err != nil || got != want {
		t.Errorf("offset after 2.5 min, inside the gzip batch: got %d %v, want %d", got, err, want)
	}
}

func TestSaramaAdminValidateOnlyOffsetDeleteAndGroups(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	cl := saramaClient(t, srv.addr, saramaConfig(sarama.V3_6_0_0))
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	bad := "-7"
	err = admin.CreateTopic("sarama-vo", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1,
		ConfigEntries: map[string]*string{"segment.bytes": &bad}}, true)
	var te *sarama.TopicError
	if !errors.As(err, &te) || te.Err != sarama.ErrInvalidConfig {
		t.Errorf("validate-only create with segment.bytes=%s: %v, want INVALID_CONFIG", bad, err)
	}
	if err := admin.CreateTopic("sarama-vo", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}, true); err != nil {
		t.Errorf("validate-only create: %v", err)
	}
	if topics, _ := admin.ListTopics(); topics["sarama-vo"].NumPartitions != 0 {
		t.Fatalf("validate-only create created the topic: %+v", topics["sarama-vo"])
	}
	if err := admin.CreateTopic("sarama-od", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: -1}, false); err != nil {
		t.Fatal(err)
	}

	// Offsets committed by a standalone consumer, then deleted one by one
	// and with the group.
	om, err := sarama.NewOffsetManagerFromClient("sarama-g", cl)
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close() // after the partition managers' deferred Close
	for p := range int32(2) {
		pom, err := om.ManagePartition("sarama-od", p)
		if err != nil {
			t.Fatal(err)
		}
		pom.MarkOffset(5+int64(p), "")
		defer pom.Close()
	}
	om.Commit()
	if err := admin.DeleteConsumerGroupOffset("sarama-g", "sarama-od", 0); err != nil {
		t.Fatalf("DeleteConsumerGroupOffset: %v", err)
	}
	got, err := admin.ListConsumerGroupOffsets("sarama-g", map[string][]int32{"sarama-od": {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if b0, b1 := got.GetBlock("sarama-od", 0), got.GetBlock("sarama-od", 1); b0 == nil || b0.Offset != -1 || b1 == nil || b1.Offset != 6 {
		t.Errorf("after OffsetDelete of partition 0: %+v and %+v, want -1 and 6", b0, b1)
	}
	if err := admin.DeleteConsumerGroup("sarama-g"); err != nil {
		t.Fatalf("DeleteConsumerGroup: %v", err)
	}
	got, _ = admin.ListConsumerGroupOffsets("sarama-g", map[string][]int32{"sarama-od": {1}})
	if b1 := got.GetBlock("sarama-od", 1); b1 == nil || b1.Offset != -1 {
		t.Errorf("after DeleteGroups: %+v, want no offset", b1)
	}
	if err := admin.DeleteConsumerGroup("sarama-g"); !errors.Is(err, sarama.ErrGroupIDNotFound) {
		t.Errorf("deleting it again: %v, want GROUP_ID_NOT_FOUND", err)
	}

	// Removing a static member that is not there names the error per
	// instance (LeaveGroup v3+ by group.instance.id alone).
	res, err := admin.RemoveMemberFromConsumerGroup("sarama-od-g", []string{"nobody"})
	if err == nil && res != nil && len(res.Members) == 1 {
		if res.Members[0].Err != sarama.ErrUnknownMemberId {
			t.Errorf("removing an unknown instance: %v, want UNKNOWN_MEMBER_ID", res.Members[0].Err)
		}
	} else if !errors.Is(err, sarama.ErrUnknownMemberId) {
		t.Errorf("removing an unknown instance: %+v %v, want UNKNOWN_MEMBER_ID", res, err)
	}
}
