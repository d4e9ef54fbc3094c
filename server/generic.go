package server

import (
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/pulpgo/pulpgo/models"
)

// The generic lists (remotes/, repositories/, distributions/) show every object through
// pulpcore's base serializer, as Pulp does: only the base fields, whatever the type.
var (
	baseRemoteFields = []string{"pulp_href", "prn", "pulp_created", "pulp_last_updated", "name", "url",
		"pulp_labels", "policy", "hidden_fields", "ca_cert", "client_cert", "tls_validation", "proxy_url",
		"max_retries", "total_timeout", "connect_timeout", "sock_connect_timeout", "sock_read_timeout",
		"headers", "download_concurrency", "rate_limit"}
	baseRemoteHidden     = []string{"client_key", "proxy_username", "proxy_password", "username", "password"}
	baseRepositoryFields = []string{"pulp_href", "prn", "pulp_created", "pulp_last_updated", "versions_href",
		"pulp_labels", "latest_version_href", "name", "description", "retain_repo_versions",
		"retain_checkpoints", "remote"}
	baseDistributionFields = []string{"pulp_href", "prn", "pulp_created", "pulp_last_updated", "base_path",
		"base_url", "content_guard", "content_guard_prn", "no_content_change_since", "hidden", "pulp_labels",
		"name", "repository", "repository_version"}
)

// baseView keeps the fields of a base serializer (absent ones as null).
func baseView(m map[string]any, fields []string) map[string]any {
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		out[f] = m[f]
	}
	return out
}

// genericRemote renders a remote as pulpcore's RemoteSerializer: the base hidden fields only.
func genericRemote(_ *gin.Context, m map[string]any) map[string]any {
	out := baseView(m, baseRemoteFields)
	if hidden, ok := m["hidden_fields"].([]any); ok {
		kept := []any{}
		for _, h := range hidden {
			if hm, ok := h.(map[string]any); ok && slices.Contains(baseRemoteHidden, hm["name"].(string)) {
				kept = append(kept, h)
			}
		}
		out["hidden_fields"] = kept
	}
	return out
}

func genericRepository(_ *gin.Context, m map[string]any) map[string]any {
	return baseView(m, baseRepositoryFields)
}

// genericDistribution renders a distribution as pulpcore's DistributionSerializer, whose
// base_url is the content app's URL of the base path.
func genericDistribution(c *gin.Context, m map[string]any) map[string]any {
	out := baseView(m, baseDistributionFields)
	origin := models.ContentOrigin()
	if origin == "" {
		scheme := "http"
		if c.Request.TLS != nil {
			scheme = "https"
		}
		origin = scheme + "://" + c.Request.Host
	}
	bp, _ := m["base_path"].(string)
	out["base_url"] = strings.TrimSuffix(origin, "/") + "/pulp/content/" + bp + "/"
	return out
}
