// Package openapi holds pulpgo's OpenAPI document (pulp.yaml), the single source of truth of
// the Pulp API: gen/ is generated from it, and the server derives from it both the document it
// serves at /pulp/api/v3/docs/api.json and the query parameters each operation accepts.
package openapi

import _ "embed"

// Spec is the OpenAPI 3.0 document in YAML, with real path parameters ({pulp_id}).
//
//go:embed pulp.yaml
var Spec []byte
