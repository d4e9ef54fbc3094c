package pullthrough

// Observer is told of the cache's lookups (the process's metrics): each manifest or blob a
// client asks for, served from storage (hit) or fetched from the upstream (miss). Its methods
// must be cheap and safe for concurrent use.
type Observer interface {
	// CacheLookup reports one lookup of kind, one of the Lookup constants.
	CacheLookup(kind string, hit bool)
	// FlightJoined reports a request that waited for the upstream call another request had
	// started for the same tag (LookupTagRevalidated) or manifest digest (LookupManifest)
	// instead of making its own. (Blobs' joins are the fill engine's.)
	FlightJoined(kind string)
}

// Kinds of lookups, as an Observer is told them.
const (
	// LookupTagFresh is a tag served within its freshness window, without asking the
	// upstream: always a hit.
	LookupTagFresh = "tag_fresh"
	// LookupTagRevalidated is a tag the upstream was asked about: a hit when it still points
	// at a manifest the cache holds (or the upstream failed and the cached one was served), a
	// miss when its manifest was fetched.
	LookupTagRevalidated = "tag_revalidated"
	// LookupManifest is a manifest asked for by digest.
	LookupManifest = "manifest"
	// LookupBlob is a blob (GET or HEAD).
	LookupBlob = "blob"
)

// noObserver is the Observer of a Cache configured without one.
type noObserver struct{}

func (noObserver) CacheLookup(string, bool) {}
func (noObserver) FlightJoined(string)      {}
