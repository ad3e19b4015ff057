package server

import (
	"time"
)

// Config is the whole configuration of one Ferry node. It is the single
// source of truth for the YAML keys, the FERRY_* environment variables,
// the `ferry serve` flags, the defaults and docs/configuration.md: every
// leaf field carries
//
//   - koanf:   its key segment (the YAML key is the dotted path of them);
//   - default: its default, in the same syntax as a YAML, env or flag value;
//   - doc:     one or two sentences for docs/configuration.md and --help.
//
// The environment variable is FERRY_ followed by the key in upper case
// with "." replaced by "_" (listeners.amqp → FERRY_LISTENERS_AMQP); the
// flag is the key with "." and "_" replaced by "-" (--listeners-amqp). A
// field may override either with an env or flag tag. Load fills a Config
// from them; fields.go walks the struct.
type Config struct {
	DataDir string `koanf:"data_dir" default:"./data" flag:"data-dir" doc:"Directory holding the node's logs, metadata and Raft state. Created if missing; locked so that two processes never share it."`

	Node      NodeConfig      `koanf:"node"`
	Cluster   ClusterConfig   `koanf:"cluster"`
	Listeners ListenersConfig `koanf:"listeners"`
	Kafka     KafkaConfig     `koanf:"kafka"`
	AMQP      AMQPConfig      `koanf:"amqp"`
	Auth      AuthConfig      `koanf:"auth"`
	Flow      FlowConfig      `koanf:"flow"`
	Log       LogConfig       `koanf:"log"`
	Shutdown  ShutdownConfig  `koanf:"shutdown"`
}

// NodeConfig identifies this node.
type NodeConfig struct {
	ID uint64 `koanf:"id" default:"1" doc:"This node's id in the cluster, from 1 to 2^53-1. A single node is node 1, a cluster of itself."`
}

// ClusterConfig lists the initial members of a multi-node cluster.
type ClusterConfig struct {
	Peers []string `koanf:"peers" default:"" doc:"Initial members of the cluster, this node included, as id=raft-host:port/forward-host:port (e.g. 2=10.0.0.2:7946/10.0.0.2:7947). Every initial node must be given the same list. Empty: a cluster of this node alone, with no inter-node listener."`
}

// ListenersConfig holds every listening address. An empty address turns
// the listener off; port 0 picks a free port (the bound address is
// printed at start).
type ListenersConfig struct {
	AMQP  string `koanf:"amqp" default:":5672" doc:"AMQP 0-9-1 listener (RabbitMQ clients). Empty turns it off."`
	Kafka string `koanf:"kafka" default:":9092" doc:"Kafka listener. Empty turns it off."`
	HTTP  string `koanf:"http" default:":8080" doc:"HTTP listener: /healthz, /readyz, the management API and console. Empty turns it off."`
	MQTT  string `koanf:"mqtt" default:"" doc:"MQTT listener (standard port :1883). Not available in this version: a value here is reported at start and ignored."`
	STOMP string `koanf:"stomp" default:"" doc:"STOMP listener (standard port :61613). Not available in this version: a value here is reported at start and ignored."`
}

// KafkaConfig tunes the Kafka front end.
type KafkaConfig struct {
	AdvertisedAddr   string   `koanf:"advertised_addr" default:"" doc:"host:port that Kafka Metadata responses give clients for this node. Empty: this node's entry in kafka.peer_addrs, else the Kafka listener's bound address (with localhost for an unspecified host)."`
	PeerAddrs        []string `koanf:"peer_addrs" default:"" doc:"Kafka addresses of the cluster's nodes for Metadata responses, as id=host:port (e.g. 2=10.0.0.2:9092): Kafka clients connect to each partition's leader at the address listed for it. Give every node the same list. Empty in a cluster: other nodes are listed without an address, and Kafka clients reach only the partitions this node leads."`
	AutoCreateTopics bool     `koanf:"auto_create_topics" default:"true" doc:"Let Metadata requests create the topics they name, as Kafka's auto.create.topics.enable."`
	AuthRequired     bool     `koanf:"auth_required" default:"false" doc:"Require SASL (PLAIN, SCRAM-SHA-256/512) on every Kafka connection. Off: connections act as auth.anonymous_user."`
}

// AMQPConfig tunes the AMQP front end.
type AMQPConfig struct {
	Heartbeat time.Duration `koanf:"heartbeat" default:"60s" doc:"Heartbeat interval offered to AMQP clients, in whole seconds up to 65535s; 0s offers none."`
}

// AuthConfig configures users at bootstrap and anonymous access.
type AuthConfig struct {
	NoGuest       bool   `koanf:"no_guest" default:"false" doc:"Do not create the user guest (password guest, usable only from loopback) when a new cluster is bootstrapped."`
	AnonymousUser string `koanf:"anonymous_user" default:"guest" doc:"User that unauthenticated Kafka connections act as when kafka.auth_required is off."`
}

// FlowConfig sets the watermarks at which publishers are blocked.
type FlowConfig struct {
	MemoryLimit   ByteSize `koanf:"memory_limit" default:"0" doc:"Heap in use above which publishers are blocked (e.g. 2GiB). 0: 40% of the machine's memory."`
	DiskFreeLimit ByteSize `koanf:"disk_free_limit" default:"1GiB" doc:"Free space of the data directory's disk below which publishers are blocked. 0: the default (1GiB); the check cannot be turned off."`
}

// LogConfig configures the log on stderr.
type LogConfig struct {
	Level  string `koanf:"level" default:"info" doc:"Least severe level logged: debug, info, warn or error."`
	Format string `koanf:"format" default:"text" doc:"Log format: text (key=value) or json (one object a line)."`
}

// ShutdownConfig bounds a graceful shutdown.
type ShutdownConfig struct {
	Timeout time.Duration `koanf:"timeout" default:"30s" doc:"How long a graceful shutdown (first SIGTERM or SIGINT) may take to finish in-flight confirms, flush and close before the process exits anyway (more than 0s, at most 1h). A second signal exits at once."`
}

// ByteSize is a count of bytes, written as an integer with an optional
// unit: B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers
// of 1000).
type ByteSize uint64
