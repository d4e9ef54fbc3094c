package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// maxTagPages bounds how many Link-paginated pages Tags follows.
const maxTagPages = 1000

// Tags lists repo's tags upstream, following Link: <...>; rel="next" pagination on the
// registry's own origin. Each page gets Config.Timeout and at most MaxManifestSize bytes.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	k := call{op: "list tags", repo: repo}
	if err := checkName(k.op, repo, ""); err != nil {
		return nil, err
	}
	first := c.v2URL(repo, "tags", "list")
	tags := []string{}
	for u, page := first, 0; u != nil; page++ {
		if page == maxTagPages {
			return nil, k.fail(ErrBadResponse, "too many tag list pages")
		}
		var (
			batch []string
			err   error
		)
		batch, u, err = c.tagPage(ctx, k, first, u)
		if err != nil {
			return nil, err
		}
		tags = append(tags, batch...)
	}
	return tags, nil
}

// tagPage fetches one page of a tag list and returns its tags and the next page's URL, if any.
func (c *Client) tagPage(ctx context.Context, k call, first, u *url.URL) ([]string, *url.URL, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
	defer cancel()
	resp, err := c.send(ctx, k, http.MethodGet, u, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, statusError(k.op, k.repo, "", resp)
	}
	body, err := readSmall(ctx, c.observer, k, resp)
	if err != nil {
		return nil, nil, err
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, nil, k.fail(ErrBadResponse, "tag list is not JSON")
	}
	next, ok := nextLink(resp.Header.Values("Link"), u)
	if !ok {
		return list.Tags, nil, nil
	}
	// Only follow a link to the same list on the same origin: the request carries the token.
	if !sameOrigin(next, first) || (next.Path != first.Path && next.Path != "/v2/"+k.repo+"/tags/list") {
		return nil, nil, k.fail(ErrBadResponse, "tag list Link points elsewhere")
	}
	return list.Tags, next, nil
}

// nextLink finds the rel="next" target among Link header values, resolved against base.
func nextLink(values []string, base *url.URL) (*url.URL, bool) {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			next := false
			for _, p := range strings.Split(params, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(name, "rel") && strings.EqualFold(strings.Trim(val, `"`), "next") {
					next = true
				}
			}
			if !next {
				continue
			}
			ref, err := url.Parse(target[1 : len(target)-1])
			if err != nil {
				return nil, false
			}
			return base.ResolveReference(ref), true
		}
	}
	return nil, false
}
