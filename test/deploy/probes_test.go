package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestReadyzFollowsRedis: a content process (probes on --listen) and a worker (probes on
// --metrics-listen) answer /readyz 200 while their Redis runs, 503 naming redis (and livez
// still 200) once it is gone, and 200 again when it is back on the same address.
func TestReadyzFollowsRedis(t *testing.T) {
	bin := harness.Binary(t)
	redis := miniredis.NewMiniRedis()
	if err := redis.StartAddr(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))); err != nil {
		t.Fatal(err)
	}
	addr := redis.Addr()
	t.Cleanup(func() { redis.Close() })
	common := []string{"--database-url", testenv.PostgresURL(t), "--redis-url", "redis://" + addr + "/0",
		"--db-encryption-key", testenv.KeyFile(t)}
	content := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	worker := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startProcess(t, "content", bin, append([]string{"content", "--listen", content, "--data-dir", t.TempDir()}, common...), nil)
	startProcess(t, "worker", bin, append([]string{"worker", "--metrics-listen", worker, "--data-dir", t.TempDir()}, common...), nil)

	probe := func(u string) (int, map[string]string) {
		resp, err := http.Get(u)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	for _, a := range []string{content, worker} {
		ready := "http://" + a + "/readyz"
		waitFor(t, ready+" 200", func() bool { code, _ := probe(ready); return code == http.StatusOK })
	}
	redis.Close()
	for _, a := range []string{content, worker} {
		ready := "http://" + a + "/readyz"
		var body map[string]string
		waitFor(t, ready+" 503 with Redis gone", func() bool {
			var code int
			code, body = probe(ready)
			return code == http.StatusServiceUnavailable
		})
		if body["redis"] != "unavailable" || body["database"] != "ok" {
			t.Errorf("%s with Redis gone: %v, want redis unavailable, database ok", ready, body)
		}
		if code, _ := probe("http://" + a + "/livez"); code != http.StatusOK {
			t.Errorf("%s/livez with Redis gone: %d, want 200 (the process is alive)", a, code)
		}
	}
	if err := redis.Restart(); err != nil {
		t.Fatalf("restart Redis on %s: %v", addr, err)
	}
	for _, a := range []string{content, worker} {
		ready := "http://" + a + "/readyz"
		waitFor(t, ready+" 200 with Redis back", func() bool { code, _ := probe(ready); return code == http.StatusOK })
	}
}
