package lastpull_test

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/testenv"
)

// TestMain runs the integration tests several at a time (see testenv.Main).
func TestMain(m *testing.M) { testenv.Main(m) }
