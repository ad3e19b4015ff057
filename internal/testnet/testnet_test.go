package testnet

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortsAreDistinctBindableAndBelowTheEphemeralRange(t *testing.T) {
	ports := FreePorts(t, 20)
	seen := map[int]bool{}
	eph := ephemeralStart()
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d given twice", p)
		}
		seen[p] = true
		if eph-lowestPort > rangeMin && (p < lowestPort || p >= eph) {
			t.Errorf("port %d outside [%d, %d)", p, lowestPort, eph)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d: %v", p, err)
			continue
		}
		ln.Close()
	}
}
