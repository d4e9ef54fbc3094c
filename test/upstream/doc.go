// Package upstream runs a local stand-in for Docker Hub, the upstream of the
// pull-through cache in end-to-end tests and benchmarks.
//
// Start launches a real registry (CNCF Distribution's docker-registry) on a
// free 127.0.0.1 port with a temporary storage root, and puts two Go
// listeners in front of it:
//
//   - the front, which behaves like registry-1.docker.io: bearer-token auth
//     with a /token endpoint, manifests, tags lists and blob HEADs proxied to
//     the registry, and blob GETs answered with 307 redirects to the CDN;
//   - the CDN, which serves blob bytes at short-lived signed URLs and records
//     every request that carried an Authorization header.
//
// Counters (Counts, BlobGets, CDNGets, Reset) tell tests what clients asked
// for, and fault switches (SetDown, SetTooManyRequests, SetCorrupt,
// SetDelay, SetBlobThrottle) make the upstream misbehave at run time.
// Options.PullBudget adds Docker Hub's pull rate limit (RateLimit headers,
// 429 past the budget, a rolling window), and PushMoving images whose tags
// move to a new digest at an interval, so a cache cannot keep up by caching
// alone.
//
// PushSmall, PushIndex, PushDebianLike and PushLarge build test images
// locally as OCI layouts and push them to the registry with skopeo, so no
// internet access is needed. Nothing here talks to any address but
// 127.0.0.1.
package upstream
