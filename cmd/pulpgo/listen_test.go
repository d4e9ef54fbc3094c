package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// startServe runs pulpgo serve in this process with the embedded database and Redis and the
// extra flags args, waits until it answers, and returns its address; it stops when t ends.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg, err := parseConfig("serve", append([]string{"--listen", addr, "--data-dir", t.TempDir(), "--log-level", "error"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, "serve", cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/pulp/api/v3/status/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawRequest is a request written byte by byte on its own connection.
type rawRequest struct {
	method, path string
	admin        bool
	// length is the Content-Length announced.
	length int
	// body is sent in parts, the first at once with the headers, the others gap apart.
	body []string
	gap  time.Duration
}

// send writes r and reads until the server closes the connection (or 5 s pass); it returns
// the answer's status line and how long after the last part the connection was closed (-1
// when it was not).
func (r rawRequest) send(t *testing.T, addr string) (status string, closedAfter time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n",
		r.method, r.path, addr, r.length)
	if r.admin {
		h += "Authorization: Basic YWRtaW46cGFzc3dvcmQ=\r\n" // admin:password
	}
	if _, err := io.WriteString(conn, h+"\r\n"+r.body[0]); err != nil {
		t.Fatal(err)
	}
	for _, part := range r.body[1:] {
		time.Sleep(r.gap)
		if _, err := io.WriteString(conn, part); err != nil {
			t.Fatalf("write after %d bytes: %v", len(part), err)
		}
	}
	sent := time.Now()
	_ = conn.SetReadDeadline(sent.Add(5 * time.Second))
	rd := bufio.NewReader(conn)
	status, _ = rd.ReadString('\n')
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return strings.TrimSpace(status), -1
	}
	return strings.TrimSpace(status), time.Since(sent)
}

// TestBodyIdleTimeout checks that a request body that stops sending is cut after the idle
// timeout, on the API (as admin and anonymously) and on the registry, while a body that keeps
// sending, slower than the timeout in total, is read to its end.
func TestBodyIdleTimeout(t *testing.T) {
	t.Parallel()
	addr := startServe(t, "--body-idle-timeout", "1s")
	stalled := []struct {
		name string
		req  rawRequest
	}{
		{"api as admin", rawRequest{method: "POST", path: "/pulp/api/v3/remotes/container/pull-through/", admin: true, length: 100000, body: []string{"{"}}},
		{"api anonymously", rawRequest{method: "POST", path: "/pulp/api/v3/remotes/container/pull-through/", length: 100000, body: []string{"{"}}},
		{"registry anonymously", rawRequest{method: "POST", path: "/v2/library/busybox/blobs/uploads/", length: 100000, body: []string{"{"}}},
		{"registry as admin", rawRequest{method: "PATCH", path: "/v2/library/busybox/blobs/uploads/x", admin: true, length: 100000, body: []string{"{"}}},
	}
	for _, c := range stalled {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			status, closed := c.req.send(t, addr)
			if closed < 0 || closed > 2*time.Second {
				t.Errorf("connection closed after %v (-1: still open after 5 s), want within 2 s of the last byte; answer %q", closed, status)
			}
		})
	}
	t.Run("slow but alive", func(t *testing.T) {
		t.Parallel()
		body := `{"name": "slow-remote", "url": "https://slow.example"}`
		parts := []string{body[:len(body)-6]}
		for _, b := range body[len(body)-6:] {
			parts = append(parts, string(b))
		}
		req := rawRequest{method: "POST", path: "/pulp/api/v3/remotes/container/pull-through/", admin: true,
			length: len(body), body: parts, gap: 500 * time.Millisecond}
		if status, _ := req.send(t, addr); !strings.HasPrefix(status, "HTTP/1.1 201") {
			t.Errorf("a body sending a byte every 500 ms for 3 s: answer %q, want 201", status)
		}
	})
}

// TestConnectionLimits checks --max-connections (a connection beyond the limit is served only
// once another closes) and the 64 KiB bound on request headers.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	addr := startServe(t, "--max-connections", "2")
	get := func(conn net.Conn, rd *bufio.Reader, extra string) (string, error) {
		if _, err := fmt.Fprintf(conn, "GET /pulp/api/v3/livez/ HTTP/1.1\r\nHost: x\r\n%s\r\n", extra); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Status, nil
	}
	var conns []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := get(conn, bufio.NewReader(conn), ""); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	rd := bufio.NewReader(third)
	answered := make(chan error, 1)
	go func() {
		_, err := get(third, rd, "")
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a third connection was served while two were open (err %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	conns[0].Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("third connection: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not served after another closed")
	}
	status, err := get(third, rd, "X-Big: "+strings.Repeat("a", 100<<10)+"\r\n")
	if err != nil || !strings.HasPrefix(status, "431") {
		t.Errorf("a 100 KiB header: %q, %v; want 431", status, err)
	}
}

// readFromConn is a net.Conn that records what its ReadFrom was given.
type readFromConn struct {
	net.Conn
	from []io.Reader
}

func (c *readFromConn) ReadFrom(r io.Reader) (int64, error) {
	c.from = append(c.from, r)
	return io.Copy(io.Discard, r)
}

// TestLimitConnKeepsReadFrom checks that the connection-limiting wrapper hands copies to the
// TCP connection's own ReadFrom (which is how net/http sends files with sendfile), with the
// reader it was given, instead of hiding it behind a generic copy.
func TestLimitConnKeepsReadFrom(t *testing.T) {
	inner := &readFromConn{}
	var c net.Conn = &limitConn{Conn: inner, release: func() {}}
	rf, ok := c.(io.ReaderFrom)
	if !ok {
		t.Fatal("limitConn is not an io.ReaderFrom: net/http would copy files through memory")
	}
	f, err := os.Open("listen.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lr := &io.LimitedReader{R: f, N: 100}
	if n, err := rf.ReadFrom(lr); n != 100 || err != nil {
		t.Fatalf("ReadFrom: %d, %v; want 100, nil", n, err)
	}
	if len(inner.from) != 1 || inner.from[0] != io.Reader(lr) {
		t.Fatalf("the TCP connection's ReadFrom got %v, want the reader itself", inner.from)
	}
}
