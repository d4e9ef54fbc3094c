package registry

import "net/http"

// Route templates, the route label of the registry's request metrics: one per endpoint, never
// a name or a reference, so that the number of label values stays fixed.
const (
	RouteBase      = "/v2/"
	RouteCatalog   = "/v2/_catalog"
	RouteTags      = "/v2/{name}/tags/list"
	RouteManifest  = "/v2/{name}/manifests/{reference}"
	RouteBlob      = "/v2/{name}/blobs/{digest}"
	RouteUploads   = "/v2/{name}/blobs/uploads/"
	RouteUpload    = "/v2/{name}/blobs/uploads/{uuid}"
	RouteReferrers = "/v2/{name}/referrers/{digest}"
	RouteToken     = "/token/"
	// RouteOther is every path that is no registry endpoint.
	RouteOther = "unmatched"
)

// Route returns the route template of req's endpoint (RouteOther for none).
func Route(req *http.Request) string {
	if req.URL.Path == "/token/" || req.URL.Path == "/token" {
		return RouteToken
	}
	rt := parseRoute(req.URL.EscapedPath())
	switch rt.kind {
	case routeBase:
		return RouteBase
	case routeCatalog:
		return RouteCatalog
	case routeTags:
		return RouteTags
	case routeManifest:
		return RouteManifest
	case routeBlob:
		return RouteBlob
	case routeUpload:
		if rt.ref == "" {
			return RouteUploads
		}
		return RouteUpload
	case routeReferrers:
		return RouteReferrers
	}
	return RouteOther
}
