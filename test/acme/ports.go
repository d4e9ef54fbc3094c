package acme

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

// handedOut are the ports port returned in this process.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// port returns a TCP port on 127.0.0.1 that is free now and below the kernel's ephemeral
// range, so no outgoing connection of another test (or process) takes it between now and
// the moment a server listens on it, as happens to ports from testenv.FreePort: the servers
// here (pulpgo, Pebble, knotd) start one after the other and Pebble's configuration names
// pulpgo's ports before pulpgo listens.
func port(t *testing.T) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &low)
	}
	const floor = 10000
	if low <= floor+1000 {
		t.Fatalf("the ephemeral port range starts at %d: no room below it for test servers", low)
	}
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 1000 {
		p := floor + rand.IntN(low-floor)
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		// knotd listens on UDP too.
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u.Close()
		handedOut.ports[p] = true
		return p
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}
