package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// validate checks what parsing alone cannot: ranges, enumerations,
// addresses, and agreement between keys. The first problem found is
// returned, naming its key.
func (l Loaded) validate(file string) error {
	c := &l.Config
	bad := func(key, value, reason string) error {
		f, _ := fieldByKey(key)
		return &ConfigError{Key: key, Value: value, From: from(f, l.Source[key], file), Reason: reason}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return bad("data_dir", c.DataDir, "must name a directory")
	}
	if c.Node.ID == 0 || c.Node.ID > base.ConfigNodeIDMax {
		return bad("node.id", strconv.FormatUint(c.Node.ID, 10), fmt.Sprintf("must be between 1 and %d", base.ConfigNodeIDMax))
	}
	if err := l.validateListeners(bad); err != nil {
		return err
	}
	if _, err := ParsePeers(c.Cluster.Peers, c.Node.ID); err != nil {
		return bad("cluster.peers", strings.Join(c.Cluster.Peers, ","), err.Error())
	}
	if _, err := ParseKafkaPeerAddrs(c.Kafka.PeerAddrs, c.Cluster.Peers); err != nil {
		return bad("kafka.peer_addrs", strings.Join(c.Kafka.PeerAddrs, ","), err.Error())
	}
	if a := c.Kafka.AdvertisedAddr; a != "" {
		if _, port, err := splitAddr(a); err != nil || port == 0 {
			reason := "port 0 cannot be advertised"
			if err != nil {
				reason = err.Error()
			}
			return bad("kafka.advertised_addr", a, reason)
		}
	}
	if h := c.AMQP.Heartbeat; h < 0 || h > base.ConfigAMQPHeartbeatMax || h%time.Second != 0 {
		return bad("amqp.heartbeat", h.String(), fmt.Sprintf("must be whole seconds between 0s and %v (AMQP carries seconds in 16 bits)", base.ConfigAMQPHeartbeatMax))
	}
	if c.Auth.AnonymousUser == "" {
		return bad("auth.anonymous_user", "", "must name a user")
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		return bad("log.level", c.Log.Level, "must be one of debug, info, warn, error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return bad("log.format", c.Log.Format, "must be text or json")
	}
	if t := c.Shutdown.Timeout; t <= 0 || t > base.ConfigShutdownTimeoutMax {
		return bad("shutdown.timeout", t.String(), fmt.Sprintf("must be more than 0s and at most %v", base.ConfigShutdownTimeoutMax))
	}
	return nil
}

// listenerKeys pairs each listener's key with its address, in the order
// listeners are opened and announced.
func (c *Config) listenerKeys() []struct{ Proto, Key, Addr string } {
	return []struct{ Proto, Key, Addr string }{
		{"amqp", "listeners.amqp", c.Listeners.AMQP},
		{"kafka", "listeners.kafka", c.Listeners.Kafka},
		{"http", "listeners.http", c.Listeners.HTTP},
		{"mqtt", "listeners.mqtt", c.Listeners.MQTT},
		{"stomp", "listeners.stomp", c.Listeners.STOMP},
	}
}

func (l Loaded) validateListeners(bad func(key, value, reason string) error) error {
	type bound struct{ key, host string }
	byPort := map[int][]bound{}
	for _, ln := range l.Config.listenerKeys() {
		if ln.Addr == "" {
			continue
		}
		host, port, err := splitAddr(ln.Addr)
		if err != nil {
			return bad(ln.Key, ln.Addr, err.Error())
		}
		if port == 0 {
			continue // every :0 gets its own port
		}
		for _, other := range byPort[port] {
			if other.host == host || other.host == "" || host == "" {
				return bad(ln.Key, ln.Addr, "port already used by "+other.key+"; give each listener its own port")
			}
		}
		byPort[port] = append(byPort[port], bound{ln.Key, host})
	}
	return nil
}

// splitAddr checks a host:port listening or advertised address.
func splitAddr(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("not a host:port address (e.g. :5672, 127.0.0.1:5672, [::1]:5672)")
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number", p)
	}
	if n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port out of range (0-65535)")
	}
	return host, n, nil
}

// Peer is one initial member of a multi-node cluster.
type Peer struct {
	ID          uint64
	RaftAddr    string // the inter-node (Raft) address
	ForwardAddr string // where the node serves calls forwarded by other nodes
}

// ParsePeers parses cluster.peers entries "id=raft-host:port/forward-host:port".
// An empty list is a cluster of node self alone; otherwise self must be
// among the peers and ids must be unique.
func ParsePeers(entries []string, self uint64) ([]Peer, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	if len(entries) > base.ConfigPeersMax {
		return nil, fmt.Errorf("%d peers; at most %d", len(entries), base.ConfigPeersMax)
	}
	peers := make([]Peer, 0, len(entries))
	seen := map[uint64]bool{}
	for _, e := range entries {
		idText, addrs, ok := strings.Cut(e, "=")
		raft, fwd, ok2 := strings.Cut(addrs, "/")
		if !ok || !ok2 {
			return nil, fmt.Errorf("peer %q is not id=raft-host:port/forward-host:port", e)
		}
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil || id == 0 || id > base.ConfigNodeIDMax {
			return nil, fmt.Errorf("peer %q: id must be between 1 and %d", e, base.ConfigNodeIDMax)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer id %d appears twice", id)
		}
		seen[id] = true
		for _, a := range []string{raft, fwd} {
			if _, port, err := splitAddr(a); err != nil || port == 0 {
				return nil, fmt.Errorf("peer %q: address %q needs a host and a non-zero port", e, a)
			}
		}
		peers = append(peers, Peer{ID: id, RaftAddr: raft, ForwardAddr: fwd})
	}
	if !seen[self] {
		return nil, fmt.Errorf("node.id %d is not among the peers; list this node too", self)
	}
	return peers, nil
}

// KafkaPeerAddr is a node's Kafka address as Metadata responses give it.
type KafkaPeerAddr struct {
	Host string
	Port int32
}

// ParseKafkaPeerAddrs parses kafka.peer_addrs entries "id=host:port". The
// host must be one a client can dial (not empty, not unspecified) and the
// port non-zero; ids are unique and, when cluster.peers is set, among its
// ids.
func ParseKafkaPeerAddrs(entries, clusterPeers []string) (map[uint64]KafkaPeerAddr, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	if len(entries) > base.ConfigPeersMax {
		return nil, fmt.Errorf("%d addresses; at most %d", len(entries), base.ConfigPeersMax)
	}
	members := map[uint64]bool{}
	for _, p := range clusterPeers {
		idText, _, _ := strings.Cut(p, "=")
		if id, err := strconv.ParseUint(idText, 10, 64); err == nil {
			members[id] = true
		}
	}
	out := make(map[uint64]KafkaPeerAddr, len(entries))
	for _, e := range entries {
		idText, addr, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("entry %q is not id=host:port", e)
		}
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil || id == 0 || id > base.ConfigNodeIDMax {
			return nil, fmt.Errorf("entry %q: id must be between 1 and %d", e, base.ConfigNodeIDMax)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("node %d appears twice", id)
		}
		if len(members) > 0 && !members[id] {
			return nil, fmt.Errorf("entry %q: node %d is not in cluster.peers", e, id)
		}
		host, port, err := splitAddr(addr)
		if err == nil && port == 0 {
			err = errors.New("port 0 cannot be advertised")
		}
		if ip := net.ParseIP(host); err == nil && (host == "" || (ip != nil && ip.IsUnspecified())) {
			err = errors.New("a client cannot dial an empty or unspecified host; name the node's address")
		}
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e, err)
		}
		out[id] = KafkaPeerAddr{Host: host, Port: int32(port)}
	}
	return out, nil
}
