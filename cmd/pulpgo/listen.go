package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pulpgo/pulpgo/cmd/pulpgo/acmecert"
)

// defaultAdminPassword is the admin password when none is configured.
const defaultAdminPassword = "password"

// maxHeaderBytes bounds the request line and headers of one request.
const maxHeaderBytes = 64 << 10

// maxBodyDrain is how much of a body its handler left unread is read and dropped to keep the
// connection, as net/http does; a longer rest closes the connection instead.
const maxBodyDrain = 256 << 10

// listenAndServe serves h on addr with the limits of cfg until ctx ends, then shuts down:
// over HTTPS with --tls-cert or ACME certificates, and with --http-listen a plain-HTTP
// listener for ACME HTTP-01 challenges and the redirect to HTTPS. ACME certificates are
// kept in acmeObjects, or in the data dir when it is nil.
func listenAndServe(ctx context.Context, cfg *config, h http.Handler, acmeObjects acmecert.Objects, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	var httpLn net.Listener
	if cfg.HTTPListen != "" {
		if httpLn, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (--http-listen): %w", cfg.HTTPListen, err)
		}
	}
	closeAll := func() {
		ln.Close()
		if httpLn != nil {
			httpLn.Close()
		}
	}
	warnDefaultPassword(log, ln.Addr(), cfg.AdminPassword)
	if cfg.HSTS > 0 {
		h = hstsHandler(h, cfg.HSTS)
	}
	srv := newHTTPServer(cfg, h)
	servers := []*http.Server{srv}
	limited := newLimitListener(ln, cfg.MaxConnections)
	errc := make(chan error, 2)
	var certs *acmecert.Manager
	// redirectNames are the host names the plain-HTTP redirect may send clients to.
	redirectNames := cfg.ACME.Domains
	switch {
	case cfg.TLSCert != "":
		files, err := newCertReloader(cfg.TLSCert, cfg.TLSKey, log)
		if err != nil {
			closeAll()
			return err
		}
		srv.TLSConfig = files.tlsConfig()
		redirectNames = files.dnsNames()
	case len(cfg.ACME.Domains) > 0:
		var httpAddr net.Addr
		if httpLn != nil {
			httpAddr = httpLn.Addr()
		}
		if certs, err = newACME(cfg, acmeObjects, ln.Addr(), httpAddr, log); err != nil {
			closeAll()
			return err
		}
		defer certs.Stop()
		srv.TLSConfig = certs.TLSConfig()
	}
	if srv.TLSConfig != nil {
		go func() { errc <- srv.ServeTLS(limited, "", "") }()
	} else {
		go func() { errc <- srv.Serve(limited) }()
	}
	log.Info("listening", "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil)
	if httpLn != nil {
		_, tlsPort, _ := net.SplitHostPort(ln.Addr().String())
		plain := plainHTTPHandler(cfg.HTTPSRedirect, cfg.ContentOrigin, tlsPort, redirectNames)
		if certs != nil {
			plain = certs.HTTPChallengeHandler(plain)
		}
		hsrv := newHTTPServer(cfg, plain)
		servers = append(servers, hsrv)
		go func() { errc <- hsrv.Serve(newLimitListener(httpLn, cfg.MaxConnections)) }()
		log.Info("listening for plain HTTP", "addr", httpLn.Addr().String(), "https_redirect", cfg.HTTPSRedirect)
	}
	if certs != nil {
		// The listeners answer challenges now: get (or load) the certificate.
		if err := certs.Start(ctx); err != nil {
			closeAll()
			return err
		}
	}
	select {
	case err := <-errc:
		closeAll()
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// newHTTPServer returns the server of h with pulpgo's limits on headers, idle connections
// and idle request bodies.
func newHTTPServer(cfg *config, h http.Handler) *http.Server {
	return &http.Server{Handler: idleBodyHandler(h, cfg.BodyIdleTimeout), ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes}
}

// warnDefaultPassword logs a warning when the admin password is the default one and addr is
// reachable from other hosts (not a loopback address).
func warnDefaultPassword(log *slog.Logger, addr net.Addr, password string) {
	if password != defaultAdminPassword {
		return
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return
	}
	log.Warn(`the admin password is the default "password" and the server listens on a non-loopback address: anyone who can reach it can log in as admin; set --admin-password or PULPGO_ADMIN_PASSWORD`,
		"addr", addr.String())
}

// idleBodyHandler serves h, cutting request bodies that send nothing for timeout: each read
// of a body may wait at most timeout for data, so a slow upload that keeps sending is never
// cut, and the connection of a body that stalls is closed after the answer.
func idleBodyHandler(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		b := &idleBody{body: r.Body, w: w, rc: http.NewResponseController(w), timeout: timeout,
			expect: strings.EqualFold(r.Header.Get("Expect"), "100-continue")}
		r2 := r.WithContext(r.Context()) // net/http keeps looking at the original's Body
		r2.Body = b
		h.ServeHTTP(w, r2)
		b.finish()
	})
}

// idleBody is a request body whose every read must see data within timeout.
type idleBody struct {
	body    io.ReadCloser
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	expect  bool // the client waits for 100 Continue before it sends the body

	mu    sync.Mutex
	read  bool // a read happened
	done  bool // the body reached its end
	stuck bool // a read timed out or the rest was too long: the connection is to be closed
}

// Read reads from the body with the connection's read deadline timeout ahead.
func (b *idleBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stuck {
		return 0, errBodyIdle(b.timeout)
	}
	if !b.done {
		if err := b.rc.SetReadDeadline(time.Now().Add(b.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return 0, err
		}
	}
	b.read = true
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		if !b.done {
			b.done = true
			// Nothing more to wait for: the server may now read the connection in the
			// background for as long as the handler runs.
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.closeConn()
			err = fmt.Errorf("%w: %w", errBodyIdle(b.timeout), err)
		}
	}
	return n, err
}

// Close closes the body.
func (b *idleBody) Close() error { return b.body.Close() }

// finish runs after the handler: a body left unread is read to its end if it is short and
// keeps coming, as net/http would do without a deadline; otherwise the connection is closed
// after the answer, without waiting for the rest.
func (b *idleBody) finish() {
	b.mu.Lock()
	skip := b.done || b.stuck || (b.expect && !b.read)
	b.mu.Unlock()
	if !skip {
		n, _ := io.CopyN(io.Discard, b, maxBodyDrain)
		b.mu.Lock()
		skip = b.done || b.stuck
		b.mu.Unlock()
		if !skip && n < maxBodyDrain {
			return // another error than a timeout: net/http decides
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done && !b.stuck {
		b.closeConn()
	}
}

// closeConn makes the server close the connection after the answer, without reading the
// rest of the body: MaxBytesReader's way of telling the ResponseWriter, with a limit of 0.
func (b *idleBody) closeConn() {
	b.stuck = true
	one := make([]byte, 1)
	_, _ = http.MaxBytesReader(b.w, io.NopCloser(strings.NewReader("x")), 0).Read(one)
	// The server still tries to read the rest before it closes: let that fail at once.
	_ = b.rc.SetReadDeadline(time.Now())
}

// errBodyIdle is the error of a read of a body that sent nothing for timeout.
func errBodyIdle(timeout time.Duration) error {
	return fmt.Errorf("request body: nothing received for %s", timeout)
}

// limitListener accepts at most n connections at once: Accept waits while n are open.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// newLimitListener returns ln limited to n open connections.
func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
}

// Close closes the listener and ends a waiting Accept.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitConn frees its listener's slot when it is closed.
type limitConn struct {
	net.Conn
	release func()
}

// Close closes the connection and frees its slot.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// CloseWrite shuts down the sending side of a TCP connection, which net/http does before it
// closes a connection whose request body it left unread.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom hands a copy into the connection to the TCP connection's own ReadFrom, which sends
// files with sendfile (stored blobs through http.ServeContent, a fill's staging file) instead
// of copying them through the process's memory.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
