// Package testnet gives tests the loopback ports of the programs they
// start: ferry serve processes, a RabbitMQ node. Only tests import it,
// and it imports no Ferry package.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

const (
	// lowestPort is where FreePorts starts looking: above the ports
	// services are usually configured on.
	lowestPort = 10000
	// rangeMin is the fewest ports below the ephemeral range FreePorts
	// draws from; with fewer it takes what listening on port 0 gives.
	rangeMin = 1000
	// triesPerPort bounds the random draws per port asked for.
	triesPerPort = 100
)

// FreePorts returns n distinct loopback TCP ports that were free a
// moment ago, for processes that must be told their ports before they
// start. They come from below the kernel's ephemeral range, which it
// hands out as the local ports of outgoing connections: a port of that
// range (what listening on port 0 gives) can be taken between the check
// and the process's bind by any connection made on the machine, and the
// packages' tests run in parallel. Another test may still pick the same
// port in that moment; the process then fails to start, naming it.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := lowestPort, ephemeralStart()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0" // no room below the ephemeral range
		if hi-lo > rangeMin {
			if tries >= triesPerPort*n {
				t.Fatalf("testnet: no free port in [%d, %d) after %d tries", lo, hi, tries)
			}
			addr = fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		lns = append(lns, ln) // held until all are chosen, so they are distinct
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ephemeralStart returns the first port of the kernel's ephemeral range
// (Linux's ip_local_port_range), or lowestPort where it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lowestPort
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return lowestPort
	}
	p, err := strconv.Atoi(fields[0])
	if err != nil {
		return lowestPort
	}
	return p
}
