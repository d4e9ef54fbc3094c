// Package faults is the outage suite of issue 11: the split-role topology (api, two content
// processes, two workers) as processes of bin/pulpgo on a PostgreSQL and a Redis the test
// starts itself, with a role killed (SIGKILL) during a fill, a push, a sync and API POSTs,
// PostgreSQL and Redis restarted under load, and the storage full (a small tmpfs, for the data
// directory and for SeaweedFS's -dir). Each case drives load during the fault and checks the
// issue's expectations: requests get a 503 with the protocol's error body and never hang,
// within 10 s of the recovery a pull, a sync and a push succeed, nothing partial is visible.
// Each case logs a line "MATRIX | case | expected | seen", also appended to the file named by
// PULPGO_FAULTS_MATRIX when set.
package faults

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
