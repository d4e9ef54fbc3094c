package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinels wrapped by *Error.Err. The first four reject a caller's input before any request
// is made; the others describe an upstream answer that breaks the protocol.
var (
	// ErrInvalidName rejects a repository name outside the distribution grammar.
	ErrInvalidName = errors.New("invalid repository name")
	// ErrInvalidReference rejects a manifest reference that is neither a tag nor a digest.
	ErrInvalidReference = errors.New("invalid manifest reference")
	// ErrInvalidDigest rejects a digest that is not "sha256:" followed by 64 lowercase hex digits.
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrInvalidOffset rejects a negative blob offset.
	ErrInvalidOffset = errors.New("invalid blob offset")
	// ErrMissingDigest reports a manifest HEAD answered without a Docker-Content-Digest header.
	ErrMissingDigest = errors.New("upstream sent no Docker-Content-Digest header")
	// ErrDigestMismatch reports content or a Docker-Content-Digest header that does not match
	// the digest that was asked for or computed.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrTooLarge reports a manifest (or tag list page) larger than MaxManifestSize.
	ErrTooLarge = errors.New("upstream response too large")
	// ErrBadResponse reports any other malformed upstream answer (bad headers, bad JSON).
	ErrBadResponse = errors.New("malformed upstream response")
	// ErrTimeout is the cause given when Config.Timeout or Config.IdleTimeout runs out.
	ErrTimeout = timeoutError{}
)

// maxErrorBody bounds how much of an error body is read to find the registry error code.
const maxErrorBody = 64 << 10

// Error is a failed upstream operation: an HTTP error status, a network failure or timeout
// (StatusCode 0, Err set), or an answer that breaks the protocol. Its text never contains
// credentials or tokens.
type Error struct {
	// Op is the operation: "head manifest", "get manifest", "head blob", "get blob",
	// "list tags" or "get token" (the token realm refused or failed).
	Op string
	// Repo is the upstream repository name.
	Repo string
	// Ref is the tag or digest the operation was about; empty for tag lists.
	Ref string
	// StatusCode is the HTTP error status of the answer; 0 when there was none (no answer,
	// or an answer that broke the protocol).
	StatusCode int
	// Code is the first registry error code of the body, e.g. MANIFEST_UNKNOWN or
	// TOOMANYREQUESTS; empty when the body had none.
	Code string
	// Message is the first registry error message of the body, or a short description.
	Message string
	// Err is the cause: a network error, a timeout, or one of the package's sentinels.
	Err error
	// RetryAfter is how long a 429 answer asked the client to wait (its Retry-After in
	// seconds); 0 when it named no delay.
	RetryAfter time.Duration
}

// Error renders the operation, the object and the cause; rejected input is quoted.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("upstream: ")
	b.WriteString(e.Op)
	if e.Repo != "" || e.Ref != "" {
		b.WriteString(" ")
		b.WriteString(quoteBad(e.Repo))
		if e.Ref != "" {
			if isDigest(e.Ref) {
				b.WriteString("@")
			} else {
				b.WriteString(":")
			}
			b.WriteString(quoteBad(e.Ref))
		}
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": status %d", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause, so errors.Is works with the sentinels and with context errors.
func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether the upstream said the repository, manifest or blob does not exist:
// a 404, or one of the codes NAME_UNKNOWN, MANIFEST_UNKNOWN and BLOB_UNKNOWN. A token realm's
// 404 says nothing about the repository and does not count.
func IsNotFound(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Op == opToken {
		return false
	}
	switch e.Code {
	case "NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN":
		return true
	}
	return e.StatusCode == http.StatusNotFound
}

// IsTooManyRequests reports whether the upstream rate-limited the request (429 or the
// TOOMANYREQUESTS code).
func IsTooManyRequests(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.StatusCode == http.StatusTooManyRequests || e.Code == "TOOMANYREQUESTS"
}

// IsUnavailable reports whether the upstream could not answer usefully right now: a network
// error, a timeout, a 5xx or a 429. These are the cases where a cache should serve what it has.
// Invalid input, protocol violations, the caller's own cancellation and 4xx answers other than
// 429 are not.
func IsUnavailable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if IsTooManyRequests(e) || e.StatusCode >= 500 {
		return true
	}
	if e.StatusCode != 0 || e.Err == nil {
		return false
	}
	for _, s := range []error{ErrInvalidName, ErrInvalidReference, ErrInvalidDigest, ErrInvalidOffset,
		ErrMissingDigest, ErrDigestMismatch, ErrTooLarge, ErrBadResponse} {
		if errors.Is(e.Err, s) {
			return false
		}
	}
	if errors.Is(e.Err, ErrTimeout) || errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	// What is left is a failure to reach the upstream or to read its answer (refused,
	// reset, DNS, TLS, proxy), unless the caller itself gave up.
	return !errors.Is(e.Err, context.Canceled)
}

// timeoutError is the cause of a Config.Timeout or Config.IdleTimeout expiry. It answers
// Timeout() like net errors do.
type timeoutError struct{}

func (timeoutError) Error() string   { return "upstream timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// registryErrors is the error body of the distribution spec.
type registryErrors struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	// Token services (Docker Hub's among them) answer {"details": "..."}.
	Details string `json:"details"`
}

// statusError turns a non-success answer into an *Error. It reads at most 64 KiB of the body
// to find the registry error code and closes the body.
func statusError(op, repo, ref string, resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{Op: op, Repo: repo, Ref: ref, StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var re registryErrors
	if json.Unmarshal(body, &re) == nil {
		if len(re.Errors) > 0 {
			e.Code = re.Errors[0].Code
			e.Message = re.Errors[0].Message
		} else if re.Details != "" {
			e.Message = re.Details
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	e.Message = clip(e.Message)
	if resp.StatusCode == http.StatusTooManyRequests && e.Code == "" {
		e.Code = "TOOMANYREQUESTS"
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" && resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.Message += fmt.Sprintf(" (retry after %ds)", s)
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

// clip bounds a message taken from an upstream body so error strings stay readable.
func clip(s string) string {
	const max = 512
	s = strings.TrimSpace(s)
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
