package pullthrough

import (
	"errors"
	"fmt"
	"time"

	"github.com/pulpgo/pulpgo/content/oci"
	"github.com/pulpgo/pulpgo/content/upstream"
)

// errBudgetKept marks a manifest GET the cache did not send to keep the upstream's pull
// budget (upstream.Client.ReserveManifestGet).
var errBudgetKept = errors.New("upstream pull budget kept back")

// budgetError is the answer to a pull that needed a manifest GET the budget b could not
// give: TOOMANYREQUESTS with a Retry-After of when the budget should be back.
func budgetError(b upstream.Budget, ref string) error {
	now := time.Now()
	after := time.Second
	switch {
	case now.Before(b.SpentUntil):
		after = b.SpentUntil.Sub(now)
	case b.Remaining <= 0 && b.Window > 0:
		after = max(b.ObservedAt.Add(b.Window).Sub(now), time.Second)
	}
	e := oci.ErrUpstreamThrottle.WithDetail("reference", ref)
	return fmt.Errorf("%w: %w", errBudgetKept, oci.WithRetryAfter(e, after))
}
