package reposync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/content/upstream"
)

// TestRetryable checks which failures a sync retries: the upstream unreachable, failing or
// throttling, and cut downloads; never wrong bytes, refusals or the sync's own end.
func TestRetryable(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	status := func(code int) error {
		return fmt.Errorf("fetch blob x: %w", &upstream.Error{Op: "get blob", Repo: "r", StatusCode: code, Message: http.StatusText(code)})
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"5xx", live, status(http.StatusBadGateway), true},
		{"429", live, status(http.StatusTooManyRequests), true},
		{"network", live, &upstream.Error{Op: "get manifest", Err: errors.New("connection refused")}, true},
		{"cut download", live, errors.New("read blob sha256:x from upstream: unexpected EOF"), true},
		{"404", live, status(http.StatusNotFound), false},
		{"401", live, status(http.StatusUnauthorized), false},
		{"protocol", live, &upstream.Error{Op: "get manifest", Err: upstream.ErrTooLarge}, false},
		{"digest mismatch", live, fmt.Errorf("fill: %w", &fill.DigestMismatchError{Digest: "sha256:a", Got: "sha256:b"}), false},
		{"size mismatch", live, &fill.SizeMismatchError{Digest: "sha256:a", Want: 1, Got: 2}, false},
		{"bad manifest", live, &badManifestError{errors.New("not a manifest")}, false},
		{"canceled", live, context.Canceled, false},
		{"sync ended", done, status(http.StatusBadGateway), false},
	} {
		if got := retryable(c.ctx, c.err); got != c.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
