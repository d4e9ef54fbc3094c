package s3server

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinary builds weed (once per machine; .ci/run calls it before make test so that the
// five-minute build does not count against a test package's timeout) and checks it runs.
func TestBinary(t *testing.T) {
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "version") {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
}
