package s3

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Config says where the objects are and how to reach them.
type Config struct {
	// Bucket holds the objects, below Prefix ("" for the bucket's root).
	Bucket, Prefix string
	// Endpoint is the store's URL (http://host:port or https://host); empty: the
	// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL environment variable, else AWS S3.
	Endpoint string
	// Region is the bucket's region; empty: AWS_REGION or AWS_DEFAULT_REGION, else the
	// store's default.
	Region string
	// AccessKey and SecretKey are the credentials; empty: the standard AWS environment
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
	AccessKey, SecretKey string
	// PathStyle addresses the bucket in the path (http://host/bucket/key) instead of the host
	// name (http://bucket.host/key), as most stores other than AWS need.
	PathStyle bool
	// ScratchDir is the local directory where Writers keep their bytes until Commit uploads
	// them.
	ScratchDir string
}

// ParseURL splits a storage URL, s3://bucket/prefix, into its bucket and prefix.
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		// Not repeated: a malformed URL may hold credentials.
		return "", "", errors.New("the storage URL is not s3://bucket[/prefix]")
	}
	if u.User != nil {
		return "", "", fmt.Errorf("storage URL %q is not s3://bucket[/prefix]: credentials go in --s3-access-key and --s3-secret-key (or the AWS environment)", u.Redacted())
	}
	if u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("storage URL %q is not s3://bucket[/prefix]", s)
	}
	prefix = strings.Trim(u.Path, "/")
	for el := range strings.SplitSeq(prefix, "/") {
		if prefix != "" && (el == "" || strings.HasPrefix(el, ".")) {
			return "", "", fmt.Errorf("storage URL %q: prefix %q has an empty element or one beginning with \".\"", s, prefix)
		}
	}
	return u.Host, prefix, nil
}

// withEnv fills what c leaves empty from the standard AWS environment variables.
func (c Config) withEnv() Config {
	first := func(v string, envs ...string) string {
		for _, e := range envs {
			if v != "" {
				break
			}
			v = os.Getenv(e)
		}
		return v
	}
	c.Endpoint = first(c.Endpoint, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	c.Region = first(c.Region, "AWS_REGION", "AWS_DEFAULT_REGION")
	if c.Endpoint == "" {
		c.Endpoint = "https://s3.amazonaws.com"
	}
	return c
}

// endpoint splits an endpoint URL into the host minio-go wants and whether it is HTTPS; a
// bare host:port is HTTPS.
func endpoint(s string) (host string, secure bool, err error) {
	if !strings.Contains(s, "://") {
		return s, true, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return "", false, fmt.Errorf("S3 endpoint %q is not http(s)://host[:port]", s)
	}
	return u.Host, u.Scheme == "https", nil
}
