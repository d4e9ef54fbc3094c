package metrics_test

import (
	"testing"

	"github.com/pulpgo/pulpgo/test/imports"
)

// TestImports keeps the metrics package a leaf: Prometheus's client and the standard library,
// nothing of this module, so that every package can be observed without importing the rest.
func TestImports(t *testing.T) {
	imports.Only(t, ".", "github.com/prometheus/client_golang/prometheus",
		"github.com/prometheus/client_golang/prometheus/collectors",
		"github.com/prometheus/client_golang/prometheus/promhttp")
}
