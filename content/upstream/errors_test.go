package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// ops runs every operation of the client against repo "a"; each returns only its error.
var ops = []struct {
	name string
	head bool // a HEAD request: error bodies do not arrive
	run  func(ctx context.Context, c *Client) error
}{
	{"head manifest", true, func(ctx context.Context, c *Client) error {
		_, err := c.HeadManifest(ctx, "a", "latest", nil)
		return err
	}},
	{"get manifest", false, func(ctx context.Context, c *Client) error {
		_, _, err := c.GetManifest(ctx, "a", "latest", nil)
		return err
	}},
	{"head blob", true, func(ctx context.Context, c *Client) error {
		_, err := c.HeadBlob(ctx, "a", digestOf(nil))
		return err
	}},
	{"get blob", false, func(ctx context.Context, c *Client) error {
		rc, _, err := c.GetBlob(ctx, "a", digestOf(nil), 0)
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		return err
	}},
	{"list tags", false, func(ctx context.Context, c *Client) error {
		_, err := c.Tags(ctx, "a")
		return err
	}},
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		name                       string
		status                     int
		body                       string
		wantCode                   string // for GETs; HEAD answers have no body
		notFound, tooMany, unavail bool
	}{
		{"404 manifest unknown", 404, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`, "MANIFEST_UNKNOWN", true, false, false},
		{"404 without body", 404, "", "", true, false, false},
		{"name unknown under another status", 400, `{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}`, "NAME_UNKNOWN", true, false, false},
		{"429 toomanyrequests", 429, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`, "TOOMANYREQUESTS", false, true, true},
		{"429 without body", 429, "", "TOOMANYREQUESTS", false, true, true},
		{"500", 500, `{"errors":[{"code":"UNKNOWN","message":"boom"}]}`, "UNKNOWN", false, false, true},
		{"503 html", 503, "<html>down</html>", "", false, false, true},
		{"502 huge body", 502, strings.Repeat("x", 1<<20), "", false, false, true},
		{"403 denied", 403, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`, "DENIED", false, false, false},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				f := newFake(t, authNone)
				f.handle = func(w http.ResponseWriter, r *http.Request) bool {
					w.Header().Set("Content-Type", "application/json")
					if tt.status == 429 {
						w.Header().Set("Retry-After", "30")
					}
					w.WriteHeader(tt.status)
					io.WriteString(w, tt.body)
					return true
				}
				c := newClient(t, f.reg.URL)
				err := op.run(context.Background(), c)
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error = %#v, want *Error", err)
				}
				if e.Op != op.name || e.Repo != "a" || e.StatusCode != tt.status {
					t.Errorf("error = %+v", e)
				}
				// HEAD answers carry no body, so only the status (and 429) can say anything.
				wantNotFound := tt.notFound
				if op.head && tt.status != 404 {
					wantNotFound = false
				}
				if !op.head && e.Code != tt.wantCode {
					t.Errorf("Code = %q, want %q", e.Code, tt.wantCode)
				}
				if got := IsNotFound(err); got != wantNotFound {
					t.Errorf("IsNotFound = %v, want %v (%v)", got, wantNotFound, err)
				}
				if got := IsTooManyRequests(err); got != tt.tooMany {
					t.Errorf("IsTooManyRequests = %v, want %v", got, tt.tooMany)
				}
				if got := IsUnavailable(err); got != tt.unavail {
					t.Errorf("IsUnavailable = %v, want %v", got, tt.unavail)
				}
				if len(err.Error()) > 1024 {
					t.Errorf("error text is %d bytes long", len(err.Error()))
				}
			})
		}
	}
}

func TestNetworkErrors(t *testing.T) {
	// A server that is gone: connection refused on 127.0.0.1.
	gone := httptest.NewServer(nil)
	goneURL := gone.URL
	gone.Close()

	// A server that never answers until the client gives up.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name        string
		url         string
		ctx         context.Context
		timeout     time.Duration
		wantUnavail bool
		wantIs      error
	}{
		{"connection refused", goneURL, context.Background(), 0, true, nil},
		{"config timeout", hang.URL, context.Background(), 50 * time.Millisecond, true, ErrTimeout},
		{"caller cancelled", hang.URL, cancelled, 0, false, context.Canceled},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				c := newClient(t, tt.url, func(c *Config) { c.Timeout = tt.timeout })
				err := op.run(tt.ctx, c)
				var e *Error
				if !errors.As(err, &e) || e.StatusCode != 0 || e.Op != op.name {
					t.Fatalf("error = %#v", err)
				}
				if IsUnavailable(err) != tt.wantUnavail || IsNotFound(err) || IsTooManyRequests(err) {
					t.Errorf("IsUnavailable = %v, want %v (%v)", IsUnavailable(err), tt.wantUnavail, err)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("error %v is not %v", err, tt.wantIs)
				}
			})
		}
	}
}

func TestBlobIdleTimeout(t *testing.T) {
	f := newFake(t, authNone)
	f.handle = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stall mid-body
		return true
	}
	c := newClient(t, f.reg.URL, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	rc, size, err := c.GetBlob(context.Background(), "a", digestOf(nil), 0)
	if err != nil || size != 100 {
		t.Fatalf("GetBlob = %d, %v", size, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if string(got) != "0123456789" {
		t.Errorf("read %q before the stall", got)
	}
	if !errors.Is(err, ErrTimeout) || !IsUnavailable(err) {
		t.Fatalf("read error = %v, want an unavailable ErrTimeout", err)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "get manifest", Repo: "library/busybox", Ref: "latest", StatusCode: 404, Code: "MANIFEST_UNKNOWN", Message: "manifest unknown"},
			"upstream: get manifest library/busybox:latest: status 404: MANIFEST_UNKNOWN: manifest unknown"},
		{&Error{Op: "get blob", Repo: "a", Ref: "sha256:abc", Err: ErrTimeout},
			"upstream: get blob a@sha256:abc: upstream timed out"},
		{&Error{Op: "list tags", Repo: "a", Err: fmt.Errorf("%w: x", ErrBadResponse), Message: "m"},
			"upstream: list tags a: m: malformed upstream response: x"},
		{&Error{Op: "head manifest", Repo: "a/../b\n", Ref: "x y", Err: ErrInvalidName},
			`upstream: head manifest "a/../b\n":"x y": invalid repository name`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if IsNotFound(errors.New("x")) || IsUnavailable(nil) || IsTooManyRequests(context.DeadlineExceeded) {
		t.Error("foreign errors must not be classified")
	}
	if !IsNotFound(fmt.Errorf("wrapped: %w", &Error{StatusCode: 404})) {
		t.Error("wrapped *Error is not found")
	}
}
