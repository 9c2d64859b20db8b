package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Ports are picked in [portLow, portHigh), below Linux's default ephemeral
// range (32768..60999) and apart from the 20000-40300 ranges the dev
// cluster's tests pick from. A port in the ephemeral range could be taken
// as the source port of any outgoing connection while its node is down,
// and the restart would fail.
const (
	portLow  = 12000
	portHigh = 20000
)

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	low, high := portLow, portHigh
	if eph, ok := ephemeralLow(); ok && eph < high {
		high = eph
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	if high-low >= 1000 {
		for tries := 0; len(ports) < n && tries < 1000; tries++ {
			p := low + rand.IntN(high-low)
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue
			}
			lns = append(lns, ln)
			ports = append(ports, p)
		}
	}
	// Fall back to ports the kernel picks.
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ephemeralLow returns the low end of the kernel's ephemeral port range.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	low, err := strconv.Atoi(f[0])
	return low, err == nil
}
