package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// postgres is a PostgreSQL server of the test's own, which it stops and starts again on the
// same port (the flags of scripts/start-postgres.sh).
type postgres struct {
	bin, dir string
	port     int
	// URL is the database the roles use.
	URL string
}

// startPostgres runs initdb in a new directory (as the postgres user when root) and starts
// the server; it is stopped when t ends.
func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("no PostgreSQL server installed (apt-get install postgresql)")
	}
	sort.Strings(bins)
	// A short path: the unix socket lives there.
	dir, err := os.MkdirTemp("", "pgf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &postgres{bin: filepath.Dir(bins[len(bins)-1]), dir: dir, port: testenv.FreePort(t)}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v %s", dir, err, out)
		}
	}
	if out, err := p.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C.UTF-8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Start(t)
	t.Cleanup(func() {
		_, _ = p.run("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "-t", "30", "stop")
	})
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE pulpgo"); err != nil {
		t.Fatal(err)
	}
	p.URL = strings.Replace(admin, "/postgres?", "/pulpgo?", 1)
	return p
}

// run runs a PostgreSQL program, as the postgres user when root.
func (p *postgres) run(name string, args ...string) ([]byte, error) {
	prog := filepath.Join(p.bin, name)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", prog}, args...)...)
	} else {
		cmd = exec.Command(prog, args...)
	}
	return cmd.CombinedOutput()
}

// Start starts the server and returns once it accepts connections.
func (p *postgres) Start(t testing.TB) {
	t.Helper()
	// fsync off is safe against the process crashes the suite causes (the OS keeps what was
	// written); synchronous_commit must stay on: off, an immediate shutdown loses commits
	// the server had acknowledged, which no client can be robust to (a task that completed
	// comes back running).
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"+
		" -c full_page_writes=off -c max_connections=300", p.port, p.dir)
	if out, err := p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "postgres.log"),
		"-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
		t.Fatalf("start PostgreSQL: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server with pg_ctl's mode (fast or immediate).
func (p *postgres) Stop(t testing.TB, mode string) {
	t.Helper()
	if out, err := p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", mode, "-w", "-t", "30", "stop"); err != nil {
		t.Fatalf("stop PostgreSQL (%s): %v\n%s", mode, err, out)
	}
}

// redisServer is a redis-server of the test's own, keeping nothing on disk: started again
// after Kill, it is empty.
type redisServer struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	// URL is its database 0.
	URL string
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	r := &redisServer{dir: t.TempDir(), port: testenv.FreePort(t)}
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.Start(t)
	t.Cleanup(r.Kill)
	return r
}

// Start starts redis-server on its port and waits until it answers PING.
func (r *redisServer) Start(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", r.dir)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(r.port), "ping").Output()
		if strings.TrimSpace(string(out)) == "PONG" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %d does not answer", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends redis-server with SIGKILL (nothing saved) and waits for it.
func (r *redisServer) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}
