package models_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulpgo/pulpgo/models"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// guarded returns a client of addr with models.RedisGuard, closed when t ends.
func guarded(t *testing.T, opt *redis.Options) *redis.Client {
	t.Helper()
	c := redis.NewClient(opt)
	c.AddHook(models.RedisGuard{})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// wantRedisUnavailable fails t unless err is an UnavailableError of Redis.
func wantRedisUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var ue *models.UnavailableError
	if !errors.As(err, &ue) || ue.Service != "redis" {
		t.Errorf("%s: %v (%T), want an UnavailableError of redis", what, err, err)
	}
}

// TestRedisGuardRestart: a real redis-server stopped and started again empty on the same
// port: while it is down, a command, a pipeline and a transaction fail as unavailable
// within the test's deadline; a missing key is still redis.Nil, not a failure; once it is
// back the same client works.
func TestRedisGuardRestart(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	start := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		return cmd
	}
	stop := func(cmd *exec.Cmd) { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	srv := start()
	t.Cleanup(func() { stop(srv) })
	c := guarded(t, &redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), DialTimeout: time.Second})
	ctx := context.Background()
	waitRedis := func() {
		t.Helper()
		deadline := time.Now().Add(hangDeadline)
		for c.Set(ctx, "k", "v", 0).Err() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("redis-server on %d did not answer within %s", port, hangDeadline)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitRedis()
	if err := c.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) || models.IsUnavailable(err) {
		t.Fatalf("a missing key: %v, want redis.Nil", err)
	}

	stop(srv)
	wantRedisUnavailable(t, "GET with Redis stopped", runBounded(t, "GET", func() error { return c.Get(ctx, "k").Err() }))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "k"); p.Get(ctx, "j"); return nil })
	wantRedisUnavailable(t, "a pipeline with Redis stopped", err)
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "k", "w", 0); return nil })
	wantRedisUnavailable(t, "a transaction with Redis stopped", err)

	srv = start()
	waitRedis()
	if err := c.Get(ctx, "j").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("after the restart: %v, want redis.Nil (the server came back empty)", err)
	}
}

// TestRedisGuardClassifies: the failures go-redis reports in its own words are
// unavailable: a server still loading its data (LOADING), a connection the server closes
// (EOF), and no free connection in the pool in time; a command's own error (WRONGTYPE) is not.
func TestRedisGuardClassifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A server that answers every command LOADING, and one that closes every connection.
	loading := fakeRedis(t, func(c net.Conn, r *bufio.Reader) bool {
		_, _ = c.Write([]byte("-LOADING Redis is loading the dataset in memory\r\n"))
		return true
	})
	err := guarded(t, &redis.Options{Addr: loading, Protocol: 2, MaxRetries: 1}).Get(ctx, "k").Err()
	if err == nil || !strings.Contains(err.Error(), "LOADING ") {
		t.Errorf("GET of a loading server: %v, want its LOADING", err)
	}
	wantRedisUnavailable(t, "LOADING", err)
	closing := fakeRedis(t, func(net.Conn, *bufio.Reader) bool { return false })
	err = guarded(t, &redis.Options{Addr: closing, Protocol: 2, MaxRetries: 1}).Get(ctx, "k").Err()
	if !errors.Is(err, io.EOF) {
		t.Errorf("GET on a connection the server closes: %v, want EOF", err)
	}
	wantRedisUnavailable(t, "a closed connection", err)

	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.PoolSize, opt.PoolTimeout = 1, 200*time.Millisecond
	c := guarded(t, opt)
	// A sticky connection holds the pool's only one until it is closed.
	sticky := c.Conn()
	if err := sticky.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	err = c.Get(ctx, "k").Err()
	if !errors.Is(err, redis.ErrPoolTimeout) {
		t.Fatalf("GET with the pool's one connection taken: %v, want a pool timeout", err)
	}
	wantRedisUnavailable(t, "a pool timeout", err)
	_ = sticky.Close()

	if err := c.Set(ctx, "h", "v", 0).Err(); err != nil { // the pool's connection is free again
		t.Fatal(err)
	}
	if err := c.HGet(ctx, "h", "f").Err(); err == nil || models.IsUnavailable(err) {
		t.Errorf("HGET of a string: %v, want WRONGTYPE, not unavailable", err)
	}
}

// fakeRedis listens on loopback and, on each connection, reads commands (RESP arrays) and
// calls answer after each one, closing the connection when it returns false; it stops when t
// ends.
func fakeRedis(t *testing.T, answer func(net.Conn, *bufio.Reader) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for readCommand(r) == nil && answer(c, r) {
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readCommand reads one RESP command: *N, then N bulk strings.
func readCommand(r *bufio.Reader) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil {
		return err
	}
	for range n {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return err
		}
		if _, err := r.ReadString('\n'); err != nil { // the bytes
			return err
		}
	}
	return nil
}
