package server

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// memFile returns a MemFS holding name with contents data.
func memFile(t testing.TB, name, data string) vfs.FS {
	t.Helper()
	fs := vfs.NewMem()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return fs
}

// parsedFlags returns a flag set with every configuration flag, parsed
// from args.
func parsedFlags(t testing.TB, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaultsAreTheDocumentedOnes(t *testing.T) {
	c := Defaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"data_dir", c.DataDir, "./data"},
		{"node.id", c.Node.ID, uint64(1)},
		{"listeners.amqp", c.Listeners.AMQP, ":5672"},
		{"listeners.kafka", c.Listeners.Kafka, ":9092"},
		{"listeners.http", c.Listeners.HTTP, ":8080"},
		{"listeners.mqtt", c.Listeners.MQTT, ""},
		{"listeners.stomp", c.Listeners.STOMP, ""},
		{"log.format", c.Log.Format, "text"},
		{"shutdown.timeout", c.Shutdown.Timeout, base.ServerShutdownTimeoutDefault},
		{"flow.disk_free_limit", uint64(c.Flow.DiskFreeLimit), uint64(base.BrokerDiskFreeLimitDefault)},
		{"amqp.heartbeat", c.AMQP.Heartbeat, base.AMQPHeartbeatDefault},
		{"cluster.peers", len(c.Cluster.Peers), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("default %s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadPrecedenceFileThenEnvThenFlags(t *testing.T) {
	file := "listeners:\n  amqp: \":1001\"\n  kafka: \":1002\"\n  http: \":1003\"\nlog:\n  level: debug\n"
	tests := []struct {
		name       string
		env        []string
		flags      []string
		wantAMQP   string
		wantKafka  string
		wantHTTP   string
		wantSource map[string]string
	}{
		{
			name:     "file over defaults",
			wantAMQP: ":1001", wantKafka: ":1002", wantHTTP: ":1003",
			wantSource: map[string]string{"listeners.amqp": SourceFile, "data_dir": SourceDefault},
		},
		{
			name:     "env over file",
			env:      []string{"FERRY_LISTENERS_AMQP=:2001", "FERRY_LISTENERS_KAFKA=:2002"},
			wantAMQP: ":2001", wantKafka: ":2002", wantHTTP: ":1003",
			wantSource: map[string]string{"listeners.amqp": SourceEnv, "listeners.http": SourceFile},
		},
		{
			name:     "flags over env",
			env:      []string{"FERRY_LISTENERS_AMQP=:2001", "FERRY_LISTENERS_KAFKA=:2002"},
			flags:    []string{"--listeners-amqp=:3001"},
			wantAMQP: ":3001", wantKafka: ":2002", wantHTTP: ":1003",
			wantSource: map[string]string{"listeners.amqp": SourceFlag, "listeners.kafka": SourceEnv},
		},
		{
			name:     "an empty env value turns a listener off",
			env:      []string{"FERRY_LISTENERS_HTTP="},
			wantAMQP: ":1001", wantKafka: ":1002", wantHTTP: "",
			wantSource: map[string]string{"listeners.http": SourceEnv},
		},
		{
			name:     "unrelated FERRY_ variables are ignored",
			env:      []string{"FERRY_SERVER=http://x:8080", "FERRY_USER=bob", "PATH=/bin"},
			wantAMQP: ":1001", wantKafka: ":1002", wantHTTP: ":1003",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Load(Sources{File: "ferry.yaml", FS: memFile(t, "ferry.yaml", file), Env: tt.env, Flags: parsedFlags(t, tt.flags...)})
			if err != nil {
				t.Fatal(err)
			}
			got := l.Config.Listeners
			if got.AMQP != tt.wantAMQP || got.Kafka != tt.wantKafka || got.HTTP != tt.wantHTTP {
				t.Errorf("listeners = %q %q %q, want %q %q %q", got.AMQP, got.Kafka, got.HTTP, tt.wantAMQP, tt.wantKafka, tt.wantHTTP)
			}
			if l.Config.Log.Level != "debug" {
				t.Errorf("log.level = %q, want the file's debug", l.Config.Log.Level)
			}
			for key, want := range tt.wantSource {
				if got := l.Source[key]; got != want {
					t.Errorf("source of %s = %q, want %q", key, got, want)
				}
			}
		})
	}
}

func TestLoadParsesEveryType(t *testing.T) {
	file := `data_dir: /srv/ferry
node:
  id: 3
cluster:
  peers:
    - 1=a:7946/a:7947
    - 3=c:7946/c:7947
kafka:
  auto_create_topics: false
amqp:
  heartbeat: 10s
flow:
  memory_limit: 2GiB
  disk_free_limit: 500MB
`
	l, err := Load(Sources{File: "f.yaml", FS: memFile(t, "f.yaml", file), Flags: parsedFlags(t, "--kafka-auth-required")})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.DataDir != "/srv/ferry" || c.Node.ID != 3 || c.Kafka.AutoCreateTopics || !c.Kafka.AuthRequired ||
		c.AMQP.Heartbeat != 10*time.Second || c.Flow.MemoryLimit != 2<<30 || c.Flow.DiskFreeLimit != 500e6 {
		t.Errorf("got %+v", c)
	}
	if got := strings.Join(c.Cluster.Peers, " "); got != "1=a:7946/a:7947 3=c:7946/c:7947" {
		t.Errorf("cluster.peers = %q", got)
	}
}

func TestLoadRejectsWithKeyValueAndSource(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		flags []string
		want  []string // substrings of the error
	}{
		{name: "port out of range", env: []string{"FERRY_LISTENERS_AMQP=localhost:99999"},
			want: []string{`listeners.amqp: "localhost:99999": port out of range`, "FERRY_LISTENERS_AMQP"}},
		{name: "not host:port", flags: []string{"--listeners-kafka=9092"},
			want: []string{`listeners.kafka: "9092": not a host:port`, "flag --listeners-kafka"}},
		{name: "two listeners on one port", env: []string{"FERRY_LISTENERS_KAFKA=:5672"},
			want: []string{`listeners.kafka: ":5672": port already used by listeners.amqp`}},
		{name: "node id zero", file: "node:\n  id: 0\n",
			want: []string{`node.id: "0": must be between 1`, "file ferry.yaml"}},
		{name: "node id not a number", env: []string{"FERRY_NODE_ID=one"},
			want: []string{`node.id: "one": not a non-negative integer`}},
		{name: "duration without unit", file: "amqp:\n  heartbeat: 60\n",
			want: []string{`amqp.heartbeat: "60": not a duration`}},
		{name: "heartbeat over 16 bits of seconds", flags: []string{"--amqp-heartbeat=65536s"},
			want: []string{`amqp.heartbeat: "18h12m16s": must be whole seconds`}},
		{name: "bad bool", env: []string{"FERRY_KAFKA_AUTH_REQUIRED=yes please"},
			want: []string{`kafka.auth_required: "yes please": not a boolean`}},
		{name: "bad size", file: "flow:\n  disk_free_limit: lots\n",
			want: []string{`flow.disk_free_limit: "lots": not a size`}},
		{name: "bad log level", flags: []string{"--log-level=loud"},
			want: []string{`log.level: "loud": must be one of debug, info, warn, error`}},
		{name: "bad log format", env: []string{"FERRY_LOG_FORMAT=xml"},
			want: []string{`log.format: "xml": must be text or json`}},
		{name: "zero shutdown timeout", flags: []string{"--shutdown-timeout=0s"},
			want: []string{`shutdown.timeout: "0s": must be more than 0s`}},
		{name: "self not among peers", env: []string{"FERRY_CLUSTER_PEERS=2=b:7946/b:7947"},
			want: []string{`cluster.peers: "2=b:7946/b:7947": node.id 1 is not among the peers`}},
		{name: "malformed peer", env: []string{"FERRY_CLUSTER_PEERS=1=a:7946"},
			want: []string{`cluster.peers: "1=a:7946": peer "1=a:7946" is not id=raft-host:port/forward-host:port`}},
		{name: "advertised port 0", env: []string{"FERRY_KAFKA_ADVERTISED_ADDR=host:0"},
			want: []string{`kafka.advertised_addr: "host:0": port 0 cannot be advertised`}},
		{name: "kafka peer address not among the peers", env: []string{"FERRY_CLUSTER_PEERS=1=a:7946/a:7947", "FERRY_KAFKA_PEER_ADDRS=1=a:9092,3=c:9092"},
			want: []string{`kafka.peer_addrs: "1=a:9092,3=c:9092": entry "3=c:9092": node 3 is not in cluster.peers`, "FERRY_KAFKA_PEER_ADDRS"}},
		{name: "empty data dir", flags: []string{"--data-dir="},
			want: []string{`data_dir: "": must name a directory`}},
		{name: "unknown key suggests the closest", file: "listners:\n  amqp: \":5672\"\n",
			want: []string{`listners.amqp: "": unknown configuration key; did you mean listeners.amqp?`}},
		{name: "unknown key far from every key", file: "zzzzzzzzzzzzzz: 1\n",
			want: []string{`zzzzzzzzzzzzzz`, "docs/configuration.md lists every key"}},
		{name: "a section given a value", file: "listeners: 5\n",
			want: []string{`listeners: "": unknown configuration key`}},
		{name: "invalid yaml", file: "listeners:\n  amqp: [\n",
			want: []string{"config file ferry.yaml is not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{Env: tt.env, Flags: parsedFlags(t, tt.flags...)}
			if tt.file != "" {
				src.File, src.FS = "ferry.yaml", memFile(t, "ferry.yaml", tt.file)
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *ConfigError", err, err)
			}
			if base.CodeOf(err) != base.CodeInvalidArgument {
				t.Errorf("code = %v, want invalid_argument", base.CodeOf(err))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadLimitEdges(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flags []string
		ok    bool
	}{
		{"node id at ConfigNodeIDMax", []string{fmt.Sprintf("--node-id=%d", uint64(base.ConfigNodeIDMax))}, true},
		{"node id past ConfigNodeIDMax", []string{fmt.Sprintf("--node-id=%d", uint64(base.ConfigNodeIDMax)+1)}, false},
		{"heartbeat at ConfigAMQPHeartbeatMax", []string{"--amqp-heartbeat=" + base.ConfigAMQPHeartbeatMax.String()}, true},
		{"heartbeat past ConfigAMQPHeartbeatMax", []string{"--amqp-heartbeat=" + (base.ConfigAMQPHeartbeatMax + time.Second).String()}, false},
		{"heartbeat in fractions of a second", []string{"--amqp-heartbeat=1500ms"}, false},
		{"shutdown timeout at ConfigShutdownTimeoutMax", []string{"--shutdown-timeout=" + base.ConfigShutdownTimeoutMax.String()}, true},
		{"shutdown timeout past ConfigShutdownTimeoutMax", []string{"--shutdown-timeout=" + (base.ConfigShutdownTimeoutMax + time.Nanosecond).String()}, false},
		{"port 65535", []string{"--listeners-amqp=:65535"}, true},
		{"port 65536", []string{"--listeners-amqp=:65536"}, false},
	} {
		_, err := Load(Sources{Flags: parsedFlags(t, tt.flags...)})
		if (err == nil) != tt.ok {
			t.Errorf("%s: Load error %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestLoadMissingFileNamesIt(t *testing.T) {
	_, err := Load(Sources{File: "/nowhere/ferry.yaml", FS: vfs.NewMem()})
	if err == nil || !strings.Contains(err.Error(), "cannot read the config file /nowhere/ferry.yaml") {
		t.Fatalf("got %v, want an error naming the file", err)
	}
	if base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("code = %v, want invalid_argument", base.CodeOf(err))
	}
}

func TestLoadConfigFileSizeLimit(t *testing.T) {
	body := "node:\n  id: 7\n"
	pad := func(n int) string { return body + "#" + strings.Repeat("x", n-len(body)-2) + "\n" }
	atLimit := pad(base.ConfigFileBytesMax)
	if len(atLimit) != base.ConfigFileBytesMax {
		t.Fatalf("test file is %d bytes, want %d", len(atLimit), base.ConfigFileBytesMax)
	}
	l, err := Load(Sources{File: "f", FS: memFile(t, "f", atLimit)})
	if err != nil || l.Config.Node.ID != 7 {
		t.Fatalf("file of exactly ConfigFileBytesMax: got %v, %v; want node 7", l.Config.Node.ID, err)
	}
	_, err = Load(Sources{File: "f", FS: memFile(t, "f", pad(base.ConfigFileBytesMax+1))})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("file one byte over the limit: got %v, want a size error", err)
	}
}

func TestPrintedConfigLoadsBackUnchanged(t *testing.T) {
	l, err := Load(Sources{
		Env:   []string{"FERRY_CLUSTER_PEERS=1=a:1/a:2,2=b:1/b:2", "FERRY_FLOW_MEMORY_LIMIT=3MiB"},
		Flags: parsedFlags(t, "--listeners-http=127.0.0.1:0", "--amqp-heartbeat=0s", "--log-format=json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := l.YAML()
	for _, want := range []string{"# env FERRY_CLUSTER_PEERS", "# flag --listeners-http", "# default", `http: "127.0.0.1:0"`} {
		if !strings.Contains(out, want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
	again, err := Load(Sources{File: "p.yaml", FS: memFile(t, "p.yaml", out)})
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, out)
	}
	if got, want := again.YAML(), strings.NewReplacer("# default", "# config file", "# env FERRY_CLUSTER_PEERS", "# config file",
		"# env FERRY_FLOW_MEMORY_LIMIT", "# config file", "# flag --listeners-http", "# config file",
		"# flag --amqp-heartbeat", "# config file", "# flag --log-format", "# config file").Replace(out); got != want {
		t.Errorf("reloaded config differs:\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestParsePeers(t *testing.T) {
	peers, err := ParsePeers([]string{"1=a:7946/a:7947", "2=[::1]:7946/[::1]:7947"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []Peer{{1, "a:7946", "a:7947"}, {2, "[::1]:7946", "[::1]:7947"}}
	if len(peers) != 2 || peers[0] != want[0] || peers[1] != want[1] {
		t.Errorf("got %+v, want %+v", peers, want)
	}
	for _, bad := range [][]string{{"1=a:1/a:2", "1=b:1/b:2"}, {"0=a:1/a:2"}, {"1=a:0/a:2"}, {"x=a:1/a:2"}} {
		if _, err := ParsePeers(bad, 1); err == nil {
			t.Errorf("ParsePeers(%q) succeeded", bad)
		}
	}
	many := make([]string, base.ConfigPeersMax+1)
	for i := range many {
		many[i] = "1=a:1/a:2"
	}
	if _, err := ParsePeers(many, 1); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("ParsePeers of ConfigPeersMax+1 entries: got %v, want the limit named", err)
	}
}

func TestKafkaPeerAddrs(t *testing.T) {
	peers := []string{"1=a:7946/a:7947", "2=b:7946/b:7947"}
	got, err := ParseKafkaPeerAddrs([]string{"1=kafka-1.example:9092", "2=[::1]:19092"}, peers)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]KafkaPeerAddr{1: {"kafka-1.example", 9092}, 2: {"::1", 19092}}
	if len(got) != len(want) || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got, err := ParseKafkaPeerAddrs(nil, peers); got != nil || err != nil {
		t.Errorf("no entries: got %v %v, want nothing", got, err)
	}
	for _, tt := range []struct {
		entries []string
		want    string
	}{
		{[]string{"1=a:9092", "1=b:9092"}, "node 1 appears twice"},
		{[]string{"0=a:9092"}, "id must be between 1"},
		{[]string{"a:9092"}, "is not id=host:port"},
		{[]string{"1=a:0"}, "port 0 cannot be advertised"},
		{[]string{"1=:9092"}, "cannot dial an empty or unspecified host"},
		{[]string{"1=0.0.0.0:9092"}, "cannot dial an empty or unspecified host"},
		{[]string{"1=a"}, "not a host:port"},
		{[]string{"3=c:9092"}, "node 3 is not in cluster.peers"},
	} {
		if _, err := ParseKafkaPeerAddrs(tt.entries, peers); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKafkaPeerAddrs(%q) = %v, want an error containing %q", tt.entries, err, tt.want)
		}
	}
	// Without cluster.peers any ids are accepted, up to ConfigPeersMax.
	many := make([]string, base.ConfigPeersMax+1)
	for i := range many {
		many[i] = fmt.Sprintf("%d=h:9092", i+1)
	}
	if got, err := ParseKafkaPeerAddrs(many[:base.ConfigPeersMax], nil); err != nil || len(got) != base.ConfigPeersMax {
		t.Errorf("ConfigPeersMax entries: %d parsed, err %v", len(got), err)
	}
	if _, err := ParseKafkaPeerAddrs(many, nil); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("ConfigPeersMax+1 entries: got %v, want the limit named", err)
	}
}

func TestByteSizeRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		out  string
	}{
		{"0", 0, "0"}, {"1GiB", 1 << 30, "1GiB"}, {"1536KiB", 1536 << 10, "1536KiB"}, {"500MB", 500e6, "500000000"},
		{"7", 7, "7"}, {"2 TiB", 2 << 40, "2TiB"}, {"10B", 10, "10"},
	} {
		n, err := parseByteSize(tt.in)
		if err != nil || n != tt.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", tt.in, n, err, tt.want)
		}
		if got := ByteSize(n).String(); got != tt.out {
			t.Errorf("ByteSize(%d) = %q, want %q", n, got, tt.out)
		}
	}
	for _, bad := range []string{"", "GiB", "-1", "1.5GiB", "99999999999TiB"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) succeeded", bad)
		}
	}
}

func TestConfigurationDocIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := ConfigDoc(); string(got) != want {
		t.Errorf("docs/configuration.md is stale: run go generate ./internal/server")
	}
	for _, f := range configFields {
		if !strings.Contains(string(got), "`"+f.Env+"`") {
			t.Errorf("docs/configuration.md does not mention %s", f.Env)
		}
	}
}

func FuzzLoadFile(f *testing.F) {
	f.Add([]byte("listeners:\n  amqp: \":5672\"\n"))
	f.Add([]byte("cluster:\n  peers: [\"1=a:1/a:2\"]\nnode: {id: 1}\n"))
	f.Add([]byte(Loaded{Config: Defaults()}.YAML()))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > base.ConfigFileBytesMax {
			return
		}
		l, err := Load(Sources{File: "f", FS: memFile(t, "f", string(data))})
		if err != nil {
			if base.CodeOf(err) != base.CodeInvalidArgument {
				t.Fatalf("error %v has code %v, want invalid_argument", err, base.CodeOf(err))
			}
			return
		}
		again, err := Load(Sources{File: "f", FS: memFile(t, "f", l.YAML())})
		if err != nil || !reflect.DeepEqual(again.Config, l.Config) {
			t.Fatalf("accepted config does not round-trip: %v\n%s", err, l.YAML())
		}
	})
}
