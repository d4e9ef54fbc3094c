package objectstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/s3server"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestStartRefusesUnreachableBucket starts serve on a bucket that does not exist and with a
// wrong secret key: each time it stops at once with an error naming the bucket, and never
// prints the secret.
func TestStartRefusesUnreachableBucket(t *testing.T) {
	bin := os.Getenv("PULPGO_TEST_BINARY")
	if bin == "" {
		bin = harness.Binary(t)
	}
	weed := s3server.Start(t, "")
	bucket := weed.NewBucket(t)
	for _, tt := range []struct {
		name, bucket, secret, want string
	}{
		{"missing bucket", "no-such-bucket", s3server.SecretKey, "S3 bucket no-such-bucket does not exist"},
		{"wrong secret", bucket, "not-the-secret-key", "S3 bucket " + bucket},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "--data-dir", t.TempDir(),
				"--listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
				"--storage", "s3://"+tt.bucket+"/p", "--s3-endpoint", weed.Endpoint, "--s3-access-key", s3server.AccessKey)
			cmd.Env = append(os.Environ(), "PULPGO_S3_SECRET_KEY="+tt.secret)
			out, err := cmd.CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("serve on %s: %v (context %v)\n%s", tt.bucket, err, ctx.Err(), out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			if strings.Contains(string(out), tt.secret) {
				t.Errorf("output shows the secret key:\n%s", out)
			}
		})
	}
}
