package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pulpgo/pulpgo/content/fill"
	"github.com/pulpgo/pulpgo/models"
)

// config holds every setting; each has a flag and a PULPGO_* environment variable (the flag wins).
type config struct {
	Listen      string
	DataDir     string
	DatabaseURL string
	RedisURL    string
	// DBEncryptionKey is the key file that seals remote secrets and task arguments in the
	// database (Pulp's DB_ENCRYPTION_KEY); empty = <data-dir>/db_symmetric_key, created at
	// the first start (serve, and migrate on the embedded database, only).
	DBEncryptionKey string
	AdminPassword   string
	StorageDir      string
	LogLevel        string
	// TagFreshness is how long a cached tag is served without asking the upstream.
	TagFreshness time.Duration
	// DatabaseTimeout bounds each PostgreSQL statement issued without a deadline of its own.
	DatabaseTimeout time.Duration
	// UpstreamTimeout bounds manifest requests to the upstream before the cache answers.
	UpstreamTimeout time.Duration
	// ContentOrigin is Pulp's CONTENT_ORIGIN: the URL clients reach the registry at.
	ContentOrigin string
	// NewNamesPerMinute bounds the images a pull-through distribution creates per minute.
	NewNamesPerMinute int
	Concurrency       int
	// BodyIdleTimeout is how long a request body may send nothing before the connection is
	// closed; it is measured per read, so a slow upload that keeps sending is never cut.
	BodyIdleTimeout time.Duration
	// MaxConnections bounds the connections served at once; more wait to be accepted.
	MaxConnections int
	// TokenAuth turns on the registry's token authentication (Pulp's default); false is
	// Pulp's TOKEN_AUTH_DISABLED: Basic credentials only.
	TokenAuth bool
	// TokenKey is a PEM file with the EC P-256 key that signs registry tokens; empty = the
	// key stored (encrypted) in the database, generated at the first start.
	TokenKey string
	// TokenExpiration is how long a registry token is valid (Pulp's TOKEN_EXPIRATION_TIME).
	TokenExpiration time.Duration
	// FillResumes is how many times a blob fill resumes (Range: bytes=<staged>-) after its
	// upstream connection broke mid-blob, before it fails; 0: never.
	FillResumes int
	// OrphanProtectionTime is Pulp's ORPHAN_PROTECTION_TIME: minutes an orphan cleanup that
	// names no protection time keeps content after its last use.
	OrphanProtectionTime int
	// TLSCert and TLSKey are PEM files of the certificate and key every listening role serves
	// HTTPS with (reloaded when they change); empty: plain HTTP.
	TLSCert, TLSKey string
	// Mirrors maps upstream hosts to the pull-through distributions that serve unprefixed
	// names (--mirror NAME for docker.io, --mirror HOST=NAME for others).
	Mirrors map[string]string
	// UploadTimeout is how long a registry blob upload may go without a write before it is
	// swept as abandoned.
	UploadTimeout time.Duration
	// Htpasswd is an htpasswd file (bcrypt entries) of users who may pull only; empty: none.
	Htpasswd string
	// FillsRequireAuth lets only authenticated users make the pull-through cache fetch;
	// anonymous pulls get what is cached.
	FillsRequireAuth bool
	// UpstreamBudgetLow is the fraction of an upstream's pull budget the cache keeps back:
	// below it, moved tags are served stale and only uncached manifests are fetched.
	UpstreamBudgetLow float64
	// BreakerFailures and BreakerCooldown configure the circuit breaker of each upstream host.
	BreakerFailures int
	BreakerCooldown time.Duration
	// ACME holds the settings of certificates from an ACME CA (off without domains).
	ACME acmeSettings
	// HTTPListen is the address of a plain-HTTP listener answering ACME HTTP-01 challenges
	// and, with HTTPSRedirect, redirecting everything else to HTTPS; empty: none.
	HTTPListen    string
	HTTPSRedirect bool
	// HSTS is the max-age of the Strict-Transport-Security header of HTTPS answers; 0: none.
	HSTS time.Duration
	// MetricsListen is the address of a plain-HTTP listener serving only /metrics; empty: the
	// main listener serves /metrics (and the worker serves none).
	MetricsListen string
	// Quota holds the storage quota and the eviction's settings (off without a quota).
	Quota quotaSettings
	// Store chooses the blob storage: the filesystem at StorageDir, or S3.
	Store storageSettings
	// AppName names this process's apps (api, content, worker) in /status/ and /workers/;
	// empty: <pid>@<hostname>. A process restarted under the same name fails what its
	// previous run left running at once, instead of after the workers' TTL.
	AppName string
}

// parseConfig reads the settings of role from args and the environment.
func parseConfig(role string, args []string) (*config, error) {
	defListen := ":24817"
	if role == "content" {
		defListen = ":24816"
	}
	fs := flag.NewFlagSet("pulpgo "+role, flag.ContinueOnError)
	c := &config{}
	str := func(p *string, name, env, def, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			def = v
		}
		fs.StringVar(p, name, def, usage+" (env "+env+")")
	}
	// A PULPGO_* value that does not parse stops the start, as a bad flag does.
	var envErrs []error
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q is not a duration (like 30s or 2m)", env, v))
			}
			def = d
		}
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
	}
	num := func(p *int, name, env string, def int, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q is not a whole number", env, v))
			}
			def = n
		}
		fs.IntVar(p, name, def, usage+" (env "+env+")")
	}
	str(&c.Listen, "listen", "PULPGO_LISTEN", defListen, "address to listen on")
	str(&c.DataDir, "data-dir", "PULPGO_DATA_DIR", "./data", "directory for the embedded database and blob storage")
	str(&c.DatabaseURL, "database-url", "PULPGO_DATABASE_URL", "", "postgres://... URL; empty = embedded SQLite in the data dir (serve only)")
	dur(&c.DatabaseTimeout, "database-timeout", "PULPGO_DATABASE_TIMEOUT", models.DefaultStatementTimeout, "PostgreSQL: a statement (or BEGIN/COMMIT) of a request that has no answer within this long fails 503 instead of waiting")
	str(&c.RedisURL, "redis-url", "PULPGO_REDIS_URL", "", "redis://host:port/db URL; empty = in-process Redis (serve only)")
	str(&c.DBEncryptionKey, "db-encryption-key", "PULPGO_DB_ENCRYPTION_KEY", "", "file holding the key that encrypts secrets in the database (32 bytes in base64); empty = <data-dir>/db_symmetric_key, created at first start (serve only)")
	str(&c.AdminPassword, "admin-password", "PULPGO_ADMIN_PASSWORD", "password", "password of the API user admin")
	str(&c.StorageDir, "storage-dir", "PULPGO_STORAGE_DIR", "", "blob storage directory (default <data-dir>/storage)")
	str(&c.ContentOrigin, "content-origin", "PULPGO_CONTENT_ORIGIN", "", "URL clients reach the registry at (Pulp's CONTENT_ORIGIN, e.g. https://registry.example.com); prefixes registry_path where there is no request host, and is the origin of the registry token realm (<origin>/token/)")
	str(&c.LogLevel, "log-level", "PULPGO_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&c.AppName, "app-name", "PULPGO_APP_NAME", "", "name of this process's apps in /status/ and /workers/, kept across restarts by a supervisor (e.g. the pod or container name) so a restart at once fails the tasks the killed run left; unique per process (default <pid>@<hostname>)")
	dur(&c.TagFreshness, "tag-freshness", "PULPGO_TAG_FRESHNESS", 30*time.Second, "how long a pulled tag is served without asking the upstream (0 = always ask)")
	dur(&c.UpstreamTimeout, "upstream-timeout", "PULPGO_UPSTREAM_TIMEOUT", 5*time.Second, "budget for upstream manifest requests before serving the cache")
	num(&c.NewNamesPerMinute, "new-names-per-minute", "PULPGO_NEW_NAMES_PER_MINUTE", 60, "new images a pull-through distribution may create per minute, per content process; beyond it pulls of new names get 429 (negative = no limit)")
	dur(&c.BodyIdleTimeout, "body-idle-timeout", "PULPGO_BODY_IDLE_TIMEOUT", 60*time.Second, "a request body that sends nothing for this long is cut and its connection closed")
	num(&c.MaxConnections, "max-connections", "PULPGO_MAX_CONNECTIONS", 1024, "connections served at once; more wait to be accepted")
	num(&c.FillResumes, "fill-resumes", "PULPGO_FILL_RESUMES", fill.DefaultResumes, "times a blob fill resumes with a Range request after its upstream connection broke mid-blob, before it fails its clients (0 = never)")
	num(&c.OrphanProtectionTime, "orphan-protection-time", "PULPGO_ORPHAN_PROTECTION_TIME", models.DefaultOrphanProtectionMinutes, "minutes an orphan cleanup that names no orphan_protection_time keeps content in no repository version after its last use (Pulp's ORPHAN_PROTECTION_TIME)")
	boolean := func(p *bool, name, env string, def bool, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q is not a boolean (true or false)", env, v))
			}
			def = b
		}
		fs.BoolVar(p, name, def, usage+" (env "+env+")")
	}
	boolean(&c.TokenAuth, "token-auth", "PULPGO_TOKEN_AUTH", true, "registry token authentication as Pulp's (GET /token/, Bearer challenges); false = Basic credentials only (Pulp's TOKEN_AUTH_DISABLED)")
	str(&c.TokenKey, "token-key", "PULPGO_TOKEN_KEY", "", "PEM file with the EC P-256 private key that signs registry tokens (ES256); empty = a key generated once and stored encrypted in the database, shared by every content process")
	dur(&c.TokenExpiration, "token-expiration", "PULPGO_TOKEN_EXPIRATION", 5*time.Minute, "how long a registry token is valid (Pulp's TOKEN_EXPIRATION_TIME)")
	dur(&c.UploadTimeout, "upload-timeout", "PULPGO_UPLOAD_TIMEOUT", time.Hour, "a registry blob upload that receives nothing for this long is swept (its bytes removed) by the content app")
	str(&c.TLSCert, "tls-cert", "PULPGO_TLS_CERT", "", "PEM certificate (chain) to serve HTTPS with, reloaded when the file changes; with --tls-key")
	str(&c.TLSKey, "tls-key", "PULPGO_TLS_KEY", "", "PEM private key of --tls-cert")
	str(&c.Htpasswd, "htpasswd", "PULPGO_HTPASSWD", "", "htpasswd file of bcrypt entries (htpasswd -B): users who may pull only, private pull-through distributions included; re-read when it changes")
	boolean(&c.FillsRequireAuth, "fills-require-auth", "PULPGO_FILLS_REQUIRE_AUTH", false, "pulls that would fill the pull-through cache need an authenticated user; anonymous clients get cached content only, with no upstream request")
	c.UpstreamBudgetLow = 0.10
	if v, ok := os.LookupEnv("PULPGO_UPSTREAM_BUDGET_LOW"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("PULPGO_UPSTREAM_BUDGET_LOW=%q is not a number", v))
		}
		c.UpstreamBudgetLow = f
	}
	fs.Float64Var(&c.UpstreamBudgetLow, "upstream-budget-low", c.UpstreamBudgetLow, "fraction of an upstream's pull budget (RateLimit-Limit) kept back: below it, tags that moved upstream are served from the cache (stale) and only manifests the cache lacks are fetched, until a HEAD shows the budget recovered; 0 = stop only when spent (env PULPGO_UPSTREAM_BUDGET_LOW)")
	num(&c.BreakerFailures, "breaker-failures", "PULPGO_BREAKER_FAILURES", 5, "consecutive failures (no answer, timeout, 502, 503 or 504; not a 500) of an upstream host that open its circuit breaker: the cache then answers alone for --breaker-cooldown")
	dur(&c.BreakerCooldown, "breaker-cooldown", "PULPGO_BREAKER_COOLDOWN", 30*time.Second, "how long an open circuit breaker sends nothing upstream before one probe")
	c.Mirrors = map[string]string{}
	addMirror := func(v string) error {
		host, name, ok := strings.Cut(v, "=")
		if !ok {
			host, name = "docker.io", v
		}
		if host == "" || name == "" || strings.ContainsAny(host, "/ ") {
			return fmt.Errorf("--mirror %q: want a pull-through distribution name, or <upstream host>=<name>", v)
		}
		c.Mirrors[host] = name
		return nil
	}
	if v, ok := os.LookupEnv("PULPGO_MIRROR"); ok && v != "" {
		for _, m := range strings.Split(v, ",") {
			if err := addMirror(strings.TrimSpace(m)); err != nil {
				envErrs = append(envErrs, fmt.Errorf("PULPGO_MIRROR: %w", err))
			}
		}
	}
	fs.Func("mirror", "serve unprefixed names as a registry mirror through the pull-through distribution NAME (for docker.io), or HOST=NAME for the requests of containerd's mirrors with ?ns=HOST; repeatable (env PULPGO_MIRROR, comma-separated)", addMirror)
	fs.IntVar(&c.Concurrency, "concurrency", 16, "tasks a worker runs at once")
	str(&c.HTTPListen, "http-listen", "PULPGO_HTTP_LISTEN", "", "address of a plain-HTTP listener that answers ACME HTTP-01 challenges and, with --https-redirect, redirects every other request to HTTPS (otherwise 404); needs --tls-cert or --acme-domains")
	boolean(&c.HTTPSRedirect, "https-redirect", "PULPGO_HTTPS_REDIRECT", false, "answer requests to --http-listen with a 308 redirect to the same path on HTTPS")
	dur(&c.HSTS, "hsts", "PULPGO_HSTS", 0, "max-age of the Strict-Transport-Security header on HTTPS answers, like 8760h; 0 = no header")
	acmeFlags(fs, &c.ACME, str, dur)
	str(&c.MetricsListen, "metrics-listen", "PULPGO_METRICS_LISTEN", "", "address of a plain-HTTP listener serving only the Prometheus metrics (/metrics), which the main listener then does not serve; the worker serves metrics only here")
	quotaFlags(fs, &c.Quota, &envErrs, dur)
	storageFlags(fs, &c.Store, str, boolean)
	if err := errors.Join(envErrs...); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.ContentOrigin != "" {
		u, err := url.Parse(c.ContentOrigin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("--content-origin %q is not an http(s) URL of a host, like https://registry.example.com", c.ContentOrigin)
		}
		c.ContentOrigin = strings.TrimSuffix(c.ContentOrigin, "/")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.AdminPassword == "" {
		// An empty password would make "admin:" a valid login for anyone.
		return nil, fmt.Errorf("the admin password is empty (--admin-password or PULPGO_ADMIN_PASSWORD): set a non-empty password")
	}
	if c.UpstreamBudgetLow < 0 || c.UpstreamBudgetLow >= 1 {
		return nil, fmt.Errorf("--upstream-budget-low must be a fraction from 0 to below 1, not %g", c.UpstreamBudgetLow)
	}
	if c.BreakerFailures < 1 || c.BreakerCooldown <= 0 {
		return nil, fmt.Errorf("--breaker-failures must be at least 1 and --breaker-cooldown positive (got %d and %s)", c.BreakerFailures, c.BreakerCooldown)
	}
	if c.BodyIdleTimeout <= 0 {
		return nil, fmt.Errorf("--body-idle-timeout must be positive, not %s", c.BodyIdleTimeout)
	}
	if c.FillResumes < 0 || c.FillResumes > 100 {
		return nil, fmt.Errorf("--fill-resumes must be between 0 and 100, not %d", c.FillResumes)
	}
	if c.OrphanProtectionTime < 0 || int64(c.OrphanProtectionTime) > models.MaxOrphanProtectionMinutes {
		return nil, fmt.Errorf("--orphan-protection-time must be between 0 and %d minutes, not %d", int64(models.MaxOrphanProtectionMinutes), c.OrphanProtectionTime)
	}
	if c.TokenExpiration < time.Second {
		return nil, fmt.Errorf("--token-expiration must be at least 1s, not %s", c.TokenExpiration)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if err := c.checkTLS(); err != nil {
		return nil, err
	}
	if c.UploadTimeout <= 0 {
		return nil, fmt.Errorf("--upload-timeout must be positive, not %s", c.UploadTimeout)
	}
	if err := c.Quota.check(); err != nil {
		return nil, err
	}
	if err := checkAppName(c.AppName); err != nil {
		return nil, err
	}
	if c.MaxConnections < 1 {
		return nil, fmt.Errorf("--max-connections must be at least 1, not %d", c.MaxConnections)
	}
	if c.StorageDir == "" {
		c.StorageDir = c.DataDir + "/storage"
	}
	if err := c.Store.check(); err != nil {
		return nil, err
	}
	if role != "serve" && role != "migrate" {
		if c.DatabaseURL == "" || (role != "migrate" && c.RedisURL == "") {
			return nil, fmt.Errorf("pulpgo %s needs --database-url and --redis-url: only serve may use the embedded database and Redis", role)
		}
	}
	if c.DBEncryptionKey == "" && !c.mayCreateKey(role) {
		return nil, fmt.Errorf("pulpgo %s needs --db-encryption-key (or PULPGO_DB_ENCRYPTION_KEY): the key file that encrypts secrets in the database, which every role sharing it must be given; serve creates one at %s on its first start", role, filepath.Join("<data-dir>", models.KeyFileName))
	}
	return c, nil
}

// mayCreateKey reports whether role, without --db-encryption-key, uses (and at its first
// start creates) the key file in its data directory: serve, and migrate of the embedded
// database. Roles that share a database across hosts must all be given the same key file.
func (c *config) mayCreateKey(role string) bool {
	return role == "serve" || (role == "migrate" && c.DatabaseURL == "")
}

// loadKey returns the database encryption key of role: the --db-encryption-key file, or the
// one in the data directory, created if missing (created says so).
func (c *config) loadKey(role string) (k *models.Key, path string, created bool, err error) {
	if c.DBEncryptionKey != "" {
		k, err := models.LoadKeyFile(c.DBEncryptionKey)
		return k, c.DBEncryptionKey, false, err
	}
	if !c.mayCreateKey(role) {
		return nil, "", false, fmt.Errorf("pulpgo %s needs --db-encryption-key", role)
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, "", false, fmt.Errorf("create data dir %s: %w", c.DataDir, err)
	}
	path = filepath.Join(c.DataDir, models.KeyFileName)
	k, created, err = models.EnsureKeyFile(path)
	return k, path, created, err
}

// checkAppName refuses an --app-name that cannot name an app in /status/: longer than 200
// characters, or with spaces or control characters.
func checkAppName(name string) error {
	if len(name) > 200 || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fmt.Errorf("--app-name %q must be at most 200 characters without spaces or control characters", name)
	}
	return nil
}
