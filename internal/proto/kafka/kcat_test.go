package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Debian's kcat (librdkafka) against the real broker: -L, -P, -C and -G.

// kcat runs kcat with args and stdin, failing the test on error.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed: apt-get install -y kcat (Debian package kcat)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func TestKcatListProduceConsumeAndGroup(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed: apt-get install -y kcat (Debian package kcat)")
	}
	_, srv := startBroker(t, func(c *Config) { c.AutoCreateTopics = true })
	addr := srv.addr
	createTopics(t, addr, 2, "kcat-topic")

	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	out := kcat(t, "", "-b", addr, "-L", "-J")
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J output: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != addr {
		t.Errorf("brokers: got %+v, want one at %s", md.Brokers, addr)
	}
	found := false
	for _, tp := range md.Topics {
		if tp.Topic == "kcat-topic" {
			found = len(tp.Partitions) == 2 && tp.Partitions[0].Leader == md.Brokers[0].ID
		}
	}
	if !found {
		t.Errorf("kcat-topic with 2 partitions led by the broker not listed: %+v", md.Topics)
	}

	var input strings.Builder
	const n = 30
	for i := range n {
		fmt.Fprintf(&input, "k%d:v%d\n", i, i)
	}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		kcat(t, input.String(), "-b", addr, "-P", "-t", "kcat-topic", "-K", ":", "-z", codec, "-X", "acks=all")
	}
	out = kcat(t, "", "-b", addr, "-C", "-t", "kcat-topic", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5*n {
		t.Fatalf("kcat -C: %d messages, want %d", len(lines), 5*n)
	}
	slices.Sort(lines)
	for i := range n {
		want := fmt.Sprintf("k%d=v%d", i, i)
		if _, ok := slices.BinarySearch(lines, want); !ok {
			t.Errorf("message %q not consumed", want)
		}
	}

	// The balanced consumer (-G) joins a group, consumes everything and
	// commits; a second run of the same group has nothing left.
	out = kcat(t, "", "-b", addr, "-G", "kcat-group", "-c", fmt.Sprint(5*n), "-q", "-f", "%s\n",
		"-X", "auto.offset.reset=earliest", "kcat-topic")
	if got := len(strings.Split(strings.TrimSpace(out), "\n")); got != 5*n {
		t.Errorf("kcat -G: %d messages, want %d", got, 5*n)
	}
	// A producer's Metadata creates a missing topic when the server
	// allows it (auto.create.topics.enable).
	kcat(t, "hello\n", "-b", addr, "-P", "-t", "auto-created")
	out = kcat(t, "", "-b", addr, "-C", "-t", "auto-created", "-o", "beginning", "-e", "-q")
	if strings.TrimSpace(out) != "hello" {
		t.Errorf("auto-created topic: got %q, want hello", out)
	}
}

func TestKcatSASL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed: apt-get install -y kcat (Debian package kcat)")
	}
	_, srv := startBroker(t, func(c *Config) { c.AuthRequired = true })
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			// SCRAM: librdkafka before 2.6.1 (Debian's 2.0.2) repeats its
			// nonce in the final message; internal/auth accepts that form
			// as Kafka does (TestScramAcceptsLibrdkafkaDoubledNonce).
			out := kcat(t, "", "-b", srv.addr, "-L", "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms="+mech,
				"-X", "sasl.username=guest", "-X", "sasl.password=guest")
			if !strings.Contains(out, "1 brokers") {
				t.Errorf("kcat -L over %s: %q", mech, out)
			}
		})
	}
}

// TestTheLastRecordIsBeforeTheEndAfterCommits: offset commits put Ferry's
// own entries in a partition's log after its last record. Clients are
// told the end of the data as the high watermark, so kcat's -o -1 reads
// the last record, the end offset is the last record's plus one, and a
// group that committed it has a lag of 0 in Kafka's own reckoning (end
// offset - committed, franz-go's kadm.Lag).
func TestTheLastRecordIsBeforeTheEndAfterCommits(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed: apt-get install -y kcat (Debian package kcat)")
	}
	_, srv := startBroker(t, nil)
	addr := srv.addr
	createTopics(t, addr, 1, "tail")
	kcat(t, "m1\nm2\nm3\n", "-b", addr, "-P", "-t", "tail", "-X", "acks=all")
	ctx := testCtx(t)
	adm := kadm.NewClient(franzClient(t, addr))
	ends, err := adm.ListEndOffsets(ctx, "tail")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("tail", 0)
	for _, g := range []string{"tail-a", "tail-b"} {
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "tail", Partition: 0, At: end.Offset, LeaderEpoch: -1})
		if err := adm.CommitAllOffsets(ctx, g, os); err != nil {
			t.Fatalf("commit of %s: %v", g, err)
		}
	}
	ends, err = adm.ListEndOffsets(ctx, "tail")
	if after, _ := ends.Lookup("tail", 0); err != nil || after.Offset != end.Offset {
		t.Errorf("end offset after two commits: %d %v, want %d", after.Offset, err, end.Offset)
	}
	if out := kcat(t, "", "-b", addr, "-C", "-t", "tail", "-o", "-1", "-e", "-q"); strings.TrimSpace(out) != "m3" {
		t.Errorf("kcat -o -1 printed %q, want m3", out)
	}
	lags, err := adm.Lag(ctx, "tail-a")
	if err != nil || lags.Error() != nil {
		t.Fatalf("Lag: %v / %v", err, lags.Error())
	}
	if l := lags["tail-a"].Lag.Total(); l != 0 {
		t.Errorf("lag of a group that committed the end: %d, want 0", l)
	}
}
