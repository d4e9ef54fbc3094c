package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// OwnPostgres is a PostgreSQL cluster of one test (scripts/start-postgres.sh), which the test
// may stop and start again on the same port, unlike the shared server.
type OwnPostgres struct {
	t    testing.TB
	dir  string
	port int
	// URL is the superuser's URL of the postgres database.
	URL string
}

// StartOwnPostgres starts a new cluster on a free port; it is stopped and removed when t ends.
func StartOwnPostgres(t testing.TB) *OwnPostgres {
	t.Helper()
	// The server runs as the postgres user when we are root: its directory must be reachable
	// by that user, so not under t.TempDir (mode 0700).
	dir, err := os.MkdirTemp("", "pulpgo-own-pg-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	p := &OwnPostgres{t: t, dir: filepath.Join(dir, "pg"), port: FreePort(t)}
	out, err := exec.Command("bash", startPostgresScript(), p.dir, strconv.Itoa(p.port)).Output()
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	p.URL = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		_ = exec.Command("bash", startPostgresScript(), "stop", p.dir).Run()
		_ = os.RemoveAll(dir)
	})
	return p
}

// Stop shuts the server down as an administrator's restart does (pg_ctl -m fast: sessions
// are ended with 57P01 admin_shutdown).
func (p *OwnPostgres) Stop() {
	p.t.Helper()
	p.pgCtl("-m", "fast", "-w", "-t", "60", "stop")
}

// Start starts the stopped server again on its port.
func (p *OwnPostgres) Start() {
	p.t.Helper()
	opts := "-p " + strconv.Itoa(p.port) + " -k " + p.sockDir() + " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
	p.pgCtl("-l", filepath.Join(p.dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start")
}

// sockDir is where the server's unix socket goes (as start-postgres.sh chooses it).
func (p *OwnPostgres) sockDir() string {
	if len(p.dir) < 80 {
		return p.dir
	}
	return "/tmp"
}

func (p *OwnPostgres) pgCtl(args ...string) {
	p.t.Helper()
	bin, err := exec.Command("bash", "-c", `d=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1); echo "$d/bin"`).Output()
	if err != nil {
		p.t.Fatalf("find pg_ctl: %v", err)
	}
	argv := append([]string{filepath.Join(strings.TrimSpace(string(bin)), "pg_ctl"), "-D", filepath.Join(p.dir, "data")}, args...)
	if os.Getuid() == 0 {
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		p.t.Fatalf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startPostgresScript is the path of scripts/start-postgres.sh in this checkout.
func startPostgresScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "start-postgres.sh")
}
