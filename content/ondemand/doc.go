// Package ondemand serves the blobs that an on_demand or streamed sync recorded instead of
// downloading them (models.RemoteArtifact): at the first pull it fetches the blob through the
// remote that synced it, with the fill engine (one fetch per digest however many clients ask,
// detached from the client, verified before the last byte goes out). A remote whose policy is
// on_demand keeps the blob (the fill commits it to storage, so later pulls ask no upstream);
// a streamed one does not (fill.Transient: every pull fetches again).
//
// It implements local.RemoteBlobs, which the content app wires into the local store: the
// local image decides which version may have which blob, this package only how the bytes of
// an allowed one are obtained, and the registry knows neither.
package ondemand
