package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// HeadManifest asks the upstream for the descriptor of repo's manifest ref (a tag or a digest)
// without its body. accept is the Accept list; nil means Docker schema 2 manifests and lists
// and OCI manifests and indexes. An answer without Docker-Content-Digest is an error wrapping
// ErrMissingDigest.
func (c *Client) HeadManifest(ctx context.Context, repo, ref string, accept []string) (Descriptor, error) {
	k := call{op: "head manifest", repo: repo, ref: ref}
	if err := checkRef(k.op, repo, ref); err != nil {
		return Descriptor{}, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	resp, err := c.send(ctx, k, http.MethodHead, c.v2URL(repo, "manifests", ref), acceptHeader(accept))
	if err != nil {
		return Descriptor{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Descriptor{}, statusError(k.op, repo, ref, resp)
	}
	resp.Body.Close()
	d := Descriptor{
		Digest:    resp.Header.Get("Docker-Content-Digest"),
		MediaType: mediaType(resp.Header),
		Size:      resp.ContentLength,
	}
	switch {
	case d.Digest == "":
		return Descriptor{}, k.fail(ErrMissingDigest, "")
	case !validDigest(d.Digest):
		return Descriptor{}, k.fail(ErrBadResponse, "Docker-Content-Digest "+quoteBad(d.Digest)+" is not a sha256 digest")
	case isDigest(ref) && d.Digest != ref:
		return Descriptor{}, k.fail(ErrDigestMismatch, "Docker-Content-Digest is "+d.Digest)
	}
	return d, nil
}

// GetManifest fetches repo's manifest ref (a tag or a digest), at most MaxManifestSize bytes,
// with accept as for HeadManifest. The descriptor's digest is the Docker-Content-Digest header,
// checked against the body, or the body's sha256 when the header is absent; a manifest fetched
// by digest must hash to it. (Signed schema 1 manifests are hashed without their signatures
// upstream, so for those the header is trusted as it is.)
func (c *Client) GetManifest(ctx context.Context, repo, ref string, accept []string) ([]byte, Descriptor, error) {
	k := call{op: "get manifest", repo: repo, ref: ref}
	if err := checkRef(k.op, repo, ref); err != nil {
		return nil, Descriptor{}, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	resp, err := c.send(ctx, k, http.MethodGet, c.v2URL(repo, "manifests", ref), acceptHeader(accept))
	if err != nil {
		return nil, Descriptor{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, Descriptor{}, statusError(k.op, repo, ref, resp)
	}
	body, err := readSmall(ctx, c.observer, k, resp)
	if err != nil {
		return nil, Descriptor{}, err
	}
	sum := sha256.Sum256(body)
	computed := "sha256:" + hex.EncodeToString(sum[:])
	d := Descriptor{Digest: computed, MediaType: mediaType(resp.Header), Size: int64(len(body))}
	signed := isSchema1(d.MediaType)
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if !validDigest(h) {
			return nil, Descriptor{}, k.fail(ErrBadResponse, "Docker-Content-Digest "+quoteBad(h)+" is not a sha256 digest")
		}
		if !signed && h != computed {
			return nil, Descriptor{}, k.fail(ErrDigestMismatch, "Docker-Content-Digest is "+h+", body hashes to "+computed)
		}
		d.Digest = h
	} else if signed && isDigest(ref) {
		d.Digest = ref
	}
	if isDigest(ref) && d.Digest != ref {
		return nil, Descriptor{}, k.fail(ErrDigestMismatch, "manifest is "+d.Digest)
	}
	return body, d, nil
}

// readSmall reads a 200 body of at most MaxManifestSize bytes and closes it.
func readSmall(ctx context.Context, obs Observer, k call, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	tooLarge := k.fail(ErrTooLarge, "more than "+strconv.Itoa(MaxManifestSize)+" bytes")
	if resp.ContentLength > MaxManifestSize {
		return nil, tooLarge
	}
	// One buffer of the announced size (io.ReadAll would grow one by doubling, leaving twice
	// the manifest's size of garbage per request).
	buf := bytes.NewBuffer(make([]byte, 0, max(resp.ContentLength, 0)+bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, MaxManifestSize+1))
	obs.UpstreamBytes(kindOf(k.op), int(n))
	if err != nil {
		return nil, k.netError(ctx, err)
	}
	body := buf.Bytes()
	if len(body) > MaxManifestSize {
		return nil, tooLarge
	}
	return body, nil
}

// acceptHeader is the Accept header for a manifest request.
func acceptHeader(accept []string) http.Header {
	if len(accept) == 0 {
		return http.Header{"Accept": {defaultAccept}}
	}
	return http.Header{"Accept": {strings.Join(accept, ", ")}}
}

// isSchema1 reports whether mt is a Docker schema 1 manifest type, whose digest is not the
// hash of its bytes when signed.
func isSchema1(mt string) bool {
	return mt == "application/vnd.docker.distribution.manifest.v1+prettyjws" ||
		mt == "application/vnd.docker.distribution.manifest.v1+json"
}
