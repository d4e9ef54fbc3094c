// Package s3 is the storage.Driver on an S3-compatible object store (AWS S3, SeaweedFS,
// MinIO, ...), through minio-go.
//
// Objects live at <prefix>/<path> in one bucket. Nothing is ever held whole in memory: a
// Writer writes a local scratch file and uploads it at Commit; Move and Stream upload a local
// file as a multipart upload in parts read back from the file (partSize each), the last part
// and the completion only at Commit, so nothing is visible before the caller has verified the
// bytes; Reader and Open read with ranged GETs. An upload that is cancelled is aborted, and
// SweepUploads aborts what a crashed process left behind (older than an age, so the uploads
// in progress of other processes are left alone).
package s3
