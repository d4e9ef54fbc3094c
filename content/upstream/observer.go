package upstream

// Observer is told of the requests a Client makes and of the body bytes they bring (the
// process's metrics). Its methods must be cheap and safe for concurrent use.
type Observer interface {
	// UpstreamRequest is called once per HTTP exchange (redirects followed) of kind, one of
	// the Kind constants, with its status code; 0 when no answer came (connection failure,
	// timeout).
	UpstreamRequest(kind string, status int)
	// UpstreamBytes is called with the body bytes n read from an answer of kind.
	UpstreamBytes(kind string, n int)
}

// Kinds of upstream requests, as an Observer is told them.
const (
	KindToken        = "token"
	KindManifestGet  = "manifest_get"
	KindManifestHead = "manifest_head"
	KindBlobGet      = "blob_get"
	KindBlobHead     = "blob_head"
	KindTags         = "tags"
)

// kindOf is the Kind of an operation.
func kindOf(op string) string {
	switch op {
	case opToken:
		return KindToken
	case "get manifest":
		return KindManifestGet
	case "head manifest":
		return KindManifestHead
	case "get blob":
		return KindBlobGet
	case "head blob":
		return KindBlobHead
	case "list tags":
		return KindTags
	}
	return op
}

// noObserver is the Observer of a Client configured without one.
type noObserver struct{}

func (noObserver) UpstreamRequest(string, int) {}
func (noObserver) UpstreamBytes(string, int)   {}
