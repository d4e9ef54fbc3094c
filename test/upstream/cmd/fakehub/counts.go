package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pulpgo/pulpgo/test/upstream"
)

// serveCounts serves the upstream's request counters read-only as JSON at
// GET http://127.0.0.1:port/_counts, on a loopback listener of its own (so
// the front keeps only Docker Hub's routes and its counters do not count
// these reads). It returns that URL and a function that stops the listener.
func serveCounts(u *upstream.Upstream, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/_counts", u.CountsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("counts listener stopped", "err", err)
		}
	}()
	return "http://" + ln.Addr().String() + "/_counts", func() { srv.Close() }, nil
}
