package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	upremotes "github.com/pulpgo/pulpgo/content/remotes"
	"github.com/pulpgo/pulpgo/content/upstream"
	"github.com/pulpgo/pulpgo/content/upstreamstatus"
	"github.com/pulpgo/pulpgo/models"
)

// TestUpstreamStatus drives real upstream clients (the content app's table, with its
// breakers and the publisher of their states) against two upstreams: one reporting a low
// pull budget, one answering 503. The API then shows, for each pull-through remote, the
// budget (low, not spent) and the breaker (open after the failures), for the right remote
// only and without its credentials; unknown ids and ordinary container remotes are 404.
func TestUpstreamStatus(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("RateLimit-Limit", "100;w=21600")
			w.Header().Set("RateLimit-Remaining", "7;w=21600")
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		}))
		defer limited.Close()
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		defer down.Close()
		const user, secret = "ci-bot", "s3cret-Pa55word"
		lim := e.create(ptRemotes, map[string]any{"name": "limited", "url": limited.URL, "username": user, "password": secret})
		dn := e.create(ptRemotes, map[string]any{"name": "down", "url": down.URL})
		plain := e.create(remotes, map[string]any{"name": "plain", "url": limited.URL, "upstream_name": "x"})

		// Before any traffic: no budget, a closed breaker.
		e.get(href(lim)+"upstream_status/").bodyIs(t, http.StatusOK, `{"upstream": "`+hostOf(limited.URL)+`",
			"budget": null, "breaker": {"state": "closed", "consecutive_failures": 0, "opened_at": null, "retry_at": null},
			"processes": []}`)

		// The content app's side: its clients table, breakers and publisher, and the heartbeat
		// that makes it an online content app.
		if err := models.Heartbeat(e.db, &models.AppStatus{Name: models.ProcessName(), AppType: models.AppContent}); err != nil {
			t.Fatal(err)
		}
		pub := upstreamstatus.New(e.db, slog.New(slog.NewTextHandler(io.Discard, nil)), 0.10)
		breakers := upstream.NewBreakers(3, time.Minute)
		breakers.Watch(pub.Breaker)
		clients := upremotes.NewClients(5 * time.Second)
		clients.Watch(breakers, pub.Budget)
		for _, h := range []string{href(lim), href(dn)} {
			obj, err := models.Get(e.db, models.KindPullThroughRemote, idOf(h))
			if err != nil {
				t.Fatal(err)
			}
			cl, err := clients.For(obj.(*models.Remote))
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				_, _ = cl.HeadManifest(context.Background(), "library/busybox", "latest", nil)
			}
		}
		pub.Close()

		m := e.get(href(lim)+"upstream_status/").expect(t, http.StatusOK)
		if strings.Contains(string(m.Body), secret) || strings.Contains(string(m.Body), user) {
			t.Fatalf("upstream_status/ shows the remote's credentials: %s", m.Body)
		}
		st := m.obj(t)
		budget, _ := st["budget"].(map[string]any)
		if budget == nil || budget["limit"] != 100.0 || budget["remaining"] != 7.0 || budget["window_seconds"] != 21600.0 ||
			budget["low"] != true || budget["spent"] != false || budget["expired"] != false || budget["observed_at"] == nil {
			t.Fatalf("budget of the limited upstream: %s", m.Body)
		}
		if br, _ := st["breaker"].(map[string]any); br["state"] != "closed" {
			t.Fatalf("breaker of the limited upstream: %s", m.Body)
		}
		if ps, _ := st["processes"].([]any); len(ps) != 1 || ps[0].(map[string]any)["process"] != models.ProcessName() ||
			ps[0].(map[string]any)["online"] != true {
			t.Fatalf("processes: %s", m.Body)
		}

		d := e.get(href(dn)+"upstream_status/").expect(t, http.StatusOK)
		st = d.obj(t)
		br, _ := st["breaker"].(map[string]any)
		if st["budget"] != nil || br["state"] != "open" || br["consecutive_failures"] != 3.0 || br["retry_at"] == nil {
			t.Fatalf("status of the down upstream: %s", d.Body)
		}

		// A process gone (no heartbeat for the content app TTL) no longer decides the breaker.
		if err := e.db.Model(&models.AppStatus{}).Where("name = ? AND app_type = ?", models.ProcessName(), models.AppContent).
			Update("last_heartbeat", time.Now().Add(-time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		d = e.get(href(dn)+"upstream_status/").expect(t, http.StatusOK)
		st = d.obj(t)
		br, _ = st["breaker"].(map[string]any)
		if ps, _ := st["processes"].([]any); br["state"] != "closed" || len(ps) != 1 || ps[0].(map[string]any)["online"] != false {
			t.Fatalf("status of the down upstream once its only process is gone: %s", d.Body)
		}

		e.get(ptRemotes+"0190f7a4-0000-7000-8000-000000000000/upstream_status/").expect(t, http.StatusNotFound)
		e.get(ptRemotes+"not-an-id/upstream_status/").expect(t, http.StatusNotFound)
		e.get(ptRemotes+idOf(href(plain))+"/upstream_status/").expect(t, http.StatusNotFound)
		e.get(href(lim)+"upstream_status/", noAuth).expect(t, http.StatusUnauthorized)
		e.post(href(lim)+"upstream_status/", map[string]any{}).expect(t, http.StatusMethodNotAllowed)
	})
}

// hostOf is the host:port of a URL.
func hostOf(u string) string { return models.UpstreamHost(u) }
