package upstream

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignedURLTTL is how long a CDN URL from a blob redirect stays valid.
const SignedURLTTL = 2 * time.Minute

// signedBlobURL returns the CDN URL of a blob, valid for SignedURLTTL.
func (u *Upstream) signedBlobURL(name, digest string, now time.Time) string {
	exp := now.Add(SignedURLTTL).Unix()
	return u.CDNURL() + "/cdn/" + name + "/" + digest +
		"?exp=" + strconv.FormatInt(exp, 10) + "&sig=" + u.sign(name, digest, exp)
}

// sign is the HMAC of a CDN URL's name, digest and expiry.
func (u *Upstream) sign(name, digest string, exp int64) string {
	m := hmac.New(sha256.New, u.cdnKey)
	m.Write([]byte(name + "\n" + digest + "\n" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// cdnHandler serves /cdn/<name>/<digest>?exp=...&sig=... It records
// Authorization headers on arrival, before any fault switch.
func (u *Upstream) cdnHandler() http.Handler {
	inner := u.faultMiddleware(http.HandlerFunc(u.serveCDN))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			u.counts.add(func(c *Counts) *int { return &c.CDNAuthorization })
			u.log.Warn("credentials sent to the CDN", "path", r.URL.Path)
		}
		inner.ServeHTTP(w, r)
	})
}

// serveCDN checks the signature, then streams the blob (or the asked Range)
// from the registry through the corrupt and throttle switches.
func (u *Upstream) serveCDN(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, "/cdn/")
	i := strings.LastIndex(rest, "/")
	if i <= 0 || !validName(rest[:i]) || !validDigest(rest[i+1:]) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	name, digest := rest[:i], rest[i+1:]
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	exp, err := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	switch {
	case err != nil || !hmac.Equal([]byte(r.URL.Query().Get("sig")), []byte(u.sign(name, digest, exp))):
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	case time.Now().Unix() > exp:
		http.Error(w, "signature expired", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodGet {
		u.counts.addCDNGet(digest, r.Header.Get("Range"))
		u.counts.cdnStart()
		defer u.counts.cdnEnd()
	}

	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.registryURL()+"/v2/"+name+"/blobs/"+digest, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if rg := r.Header.Get("Range"); rg != "" {
		req.Header.Set("Range", rg)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		http.Error(w, "origin unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	// A CDN answers like object storage, not like a registry.
	w.Header().Del("Docker-Content-Digest")
	w.Header().Del("Docker-Distribution-Api-Version")
	w.WriteHeader(resp.StatusCode)
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent {
		u.sendBody(r.Context(), w, resp.Body)
		return
	}
	_, _ = io.Copy(w, resp.Body)
}

// sendBody copies body to w, flipping the first byte when the corrupt switch
// is on, pacing writes to the throttle rate, and cutting the connection when
// the upstream goes down mid-stream or SetCutBlobs says so.
func (u *Upstream) sendBody(ctx context.Context, w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	if after, cut := u.faults.takeCut(); cut {
		_, _ = io.CopyN(w, body, after)
		_ = rc.Flush()
		panic(http.ErrAbortHandler) // the server drops the connection
	}
	buf := make([]byte, 32<<10)
	var (
		rate    int64     // bytes per second now in force, 0 = unthrottled
		sent    int64     // bytes sent since the rate was set
		since   time.Time // when the rate was set
		flipped bool
	)
	for {
		if u.faults.down.Load() {
			panic(http.ErrAbortHandler) // the server drops the connection
		}
		if r := u.faults.throttle.Load(); r != rate {
			rate, sent, since = r, 0, time.Now()
		}
		chunk := buf
		if rate > 0 { // about 20 writes a second
			chunk = buf[:min(int64(len(buf)), max(rate/20, 512))]
		}
		n, err := body.Read(chunk)
		if n > 0 {
			if !flipped && u.faults.corrupt.Load() {
				chunk[0] ^= 0xff
				flipped = true
			}
			if _, werr := w.Write(chunk[:n]); werr != nil {
				return
			}
			if rate > 0 {
				_ = rc.Flush()
				sent += int64(n)
				due := since.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
				if !sleep(ctx, time.Until(due)) {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
