package models

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// APIRoot is the prefix of every href.
const APIRoot = "/pulp/api/v3/"

// Kind is one of Pulp's object types as the API names it: its endpoint, its model class name
// (for 404 messages) and its PRN type.
type Kind struct {
	// PulpType is Pulp's pulp_type ("container.container").
	PulpType string
	// Model is the class name in Pulp's 404 message ("ContainerRemote").
	Model string
	// PRN is the type part of the PRN ("container.containerremote").
	PRN string
	// Endpoint is the collection path below APIRoot ("remotes/container/container/").
	Endpoint string
}

// The kinds this server implements.
var (
	KindContainerRemote       = Kind{"container.container", "ContainerRemote", "container.containerremote", "remotes/container/container/"}
	KindPullThroughRemote     = Kind{"container.pull-through", "ContainerPullThroughRemote", "container.containerpullthroughremote", "remotes/container/pull-through/"}
	KindContainerRepository   = Kind{"container.container", "ContainerRepository", "container.containerrepository", "repositories/container/container/"}
	KindPushRepository        = Kind{"container.container-push", "ContainerPushRepository", "container.containerpushrepository", "repositories/container/container-push/"}
	KindContainerDistribution = Kind{"container.container", "ContainerDistribution", "container.containerdistribution", "distributions/container/container/"}
	KindPullThroughDist       = Kind{"container.pull-through", "ContainerPullThroughDistribution", "container.containerpullthroughdistribution", "distributions/container/pull-through/"}
	KindNamespace             = Kind{"container.namespace", "ContainerNamespace", "container.containernamespace", "pulp_container/namespaces/"}
	KindBlob                  = Kind{"container.blob", "Blob", "container.blob", "content/container/blobs/"}
	KindManifest              = Kind{"container.manifest", "Manifest", "container.manifest", "content/container/manifests/"}
	KindTag                   = Kind{"container.tag", "Tag", "container.tag", "content/container/tags/"}
	KindTask                  = Kind{"core.task", "Task", "core.task", "tasks/"}
	KindWorker                = Kind{"core.appstatus", "AppStatus", "core.appstatus", "workers/"}
	KindRepositoryVersion     = Kind{"core.repositoryversion", "RepositoryVersion", "core.repositoryversion", ""}
	KindContentRedirectGuard  = Kind{"core.content_redirect", "ContentRedirectContentGuard", "core.contentredirectcontentguard", "contentguards/core/content_redirect/"}
)

var allKinds = []Kind{
	KindContainerRemote, KindPullThroughRemote, KindContainerRepository, KindPushRepository,
	KindContainerDistribution, KindPullThroughDist, KindNamespace, KindBlob, KindManifest, KindTag,
	KindTask, KindWorker, KindContentRedirectGuard,
}

// Href is the object's href.
func (k Kind) Href(id string) string { return APIRoot + k.Endpoint + id + "/" }

// PRNOf is the object's Pulp Resource Name.
func (k Kind) PRNOf(id string) string { return "prn:" + k.PRN + ":" + id }

// ListHref is the collection's path.
func (k Kind) ListHref() string { return APIRoot + k.Endpoint }

// NewID returns a new UUIDv7 primary key, as Pulp uses since 3.25.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// ValidID reports whether s is a UUID in canonical form.
func ValidID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == strings.ToLower(s) && len(s) == 36
}

// Ref is a parsed object reference: an href or a PRN.
type Ref struct {
	Kind Kind
	ID   string
	// Version is set for repository version hrefs (<repo href>versions/<n>/).
	Version *int64
}

// ParseRef resolves an href (relative, or an absolute URL whose path is the href) or a PRN.
// ok is false when the reference matches no known URL ("Invalid hyperlink - No URL match.").
func ParseRef(s string) (Ref, bool) {
	if strings.HasPrefix(s, "prn:") {
		parts := strings.Split(s, ":")
		if len(parts) != 3 || !ValidID(parts[2]) {
			return Ref{}, false
		}
		if parts[1] == KindRepositoryVersion.PRN {
			return Ref{Kind: KindRepositoryVersion, ID: parts[2]}, true
		}
		for _, k := range allKinds {
			if k.PRN == parts[1] {
				return Ref{Kind: k, ID: parts[2]}, true
			}
		}
		return Ref{}, false
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		s = u.Path
	}
	if !strings.HasPrefix(s, APIRoot) {
		return Ref{}, false
	}
	rest := strings.TrimPrefix(s, APIRoot)
	for _, k := range allKinds {
		if !strings.HasPrefix(rest, k.Endpoint) {
			continue
		}
		tail := strings.TrimPrefix(rest, k.Endpoint)
		parts := strings.Split(strings.TrimSuffix(tail, "/"), "/")
		if !strings.HasSuffix(tail, "/") || !ValidID(parts[0]) {
			continue
		}
		switch {
		case len(parts) == 1:
			return Ref{Kind: k, ID: parts[0]}, true
		case len(parts) == 3 && parts[1] == "versions" && (k == KindContainerRepository || k == KindPushRepository):
			n, err := strconv.ParseInt(parts[2], 10, 64)
			if err != nil || n < 0 {
				return Ref{}, false
			}
			return Ref{Kind: k, ID: parts[0], Version: &n}, true
		}
	}
	return Ref{}, false
}

// MalformedID returns the id segment of an href that has the shape of an object's href (a
// known collection, then one segment without "/" or ".", then "/") but whose id is no UUID:
// what Pulp's get_resource reports as "ID invalid: <id>". ok is false for anything else.
func MalformedID(s string) (id string, ok bool) {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		s = u.Path
	}
	rest, found := strings.CutPrefix(s, APIRoot)
	if !found {
		return "", false
	}
	for _, k := range allKinds {
		tail, found := strings.CutPrefix(rest, k.Endpoint)
		if !found || !strings.HasSuffix(tail, "/") {
			continue
		}
		seg := strings.TrimSuffix(tail, "/")
		if seg != "" && !strings.ContainsAny(seg, "/.") && !ValidID(seg) {
			return seg, true
		}
	}
	return "", false
}
