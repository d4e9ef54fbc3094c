package testenv

import (
	"net"
	"testing"
)

// avoidedPorts are held, or may be held, by packaged services or make run.
var avoidedPorts = map[int]bool{5000: true, 5432: true, 6379: true, 24816: true, 24817: true}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, never one of 5000, 5432,
// 6379, 24816 or 24817.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
			return 0
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			t.Fatalf("find a free port: %v", err)
			return 0
		}
		if !avoidedPorts[port] {
			return port
		}
	}
	t.Fatal("find a free port: the kernel kept handing out avoided ports")
	return 0
}
