// Package objectstore runs bin/pulpgo on S3 storage (--storage s3://bucket/prefix) against a
// real SeaweedFS started by the tests: pull-through pulls and pushes with skopeo, and blob
// GETs redirected to presigned URLs (--storage-redirect).
package objectstore
