package security

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpgo/pulpgo/content/token"
	"github.com/pulpgo/pulpgo/test/client"
	"github.com/pulpgo/pulpgo/test/harness"
	"github.com/pulpgo/pulpgo/test/testenv"
)

// curlTokenFlow is what a script does by hand: GET the manifest, read the Bearer challenge,
// ask its realm for a token for its service and scope (with $CREDS as Basic credentials when
// set), and GET the manifest again with the token. It prints the first status, the token's
// status and the last status, then the manifest's sha256.
const curlTokenFlow = `
url="http://$REGISTRY_ADDR/v2/$NAME/manifests/latest"
accept='application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
first=$(curl -s -o /dev/null -D headers -w '%{http_code}' -H "Accept: $accept" "$url")
challenge=$(tr -d '\r' < headers | grep -i '^www-authenticate: Bearer ')
param() { sed -E 's/.*[ ,]'"$1"'="([^"]*)".*/\1/' <<<"$challenge"; }
creds=()
if [ -n "${CREDS:-}" ]; then creds=(-u "$CREDS"); fi
token_status=$(curl -s -o token.json -w '%{http_code}' "${creds[@]}" -G "$(param realm)" \
	--data-urlencode "service=$(param service)" --data-urlencode "scope=$(param scope)")
token=$(jq -r .token token.json)
last=$(curl -s -o manifest.json -w '%{http_code}' -H "Accept: $accept" -H "Authorization: Bearer $token" "$url")
echo "$first $token_status $last"
sha256sum manifest.json | cut -d' ' -f1
`

// TestTokenAuthClients drives token authentication with real clients on both engines: a
// private pull-through distribution is closed to anonymous podman, skopeo and curl and opens
// after `podman login`, with skopeo's --creds and with curl's own token flow; a wrong password
// fails the login; anonymous pulls through a public pull-through distribution still work.
func TestTokenAuthClients(t *testing.T) {
	client.NeedTools(t, "podman", "skopeo", "curl", "jq")
	testenv.RunEngines(t, func(t *testing.T, eng testenv.Engine) {
		ctx := client.Context(t)
		hub := client.StartHub(t)
		img, err := hub.PushSmall(ctx, "library/busybox", "latest")
		if err != nil {
			t.Fatal(err)
		}
		e := startServer(t, eng)
		e.createCache(t, "pub", hub.URL(), nil, nil)
		e.createCache(t, "priv", hub.URL(), nil, map[string]any{"private": true})
		home := harness.NewClientHome(t, e.srv)
		home.PodmanEnv(t)
		reg := home.Addr
		const private = "priv/library/busybox"

		before := hub.Counts()
		if r := home.Run(t, "podman", "pull", reg+"/"+private); r.Code == 0 {
			t.Errorf("anonymous podman pull of the private distribution succeeded")
		} else if !strings.Contains(strings.ToLower(r.Stderr), "unauthorized") {
			t.Errorf("anonymous podman pull of the private distribution: stderr lacks \"unauthorized\":\n%s", r.Stderr)
		}
		if r := home.Run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+reg+"/"+private); r.Code == 0 {
			t.Errorf("anonymous skopeo inspect of the private distribution succeeded")
		} else if !strings.Contains(strings.ToLower(r.Stderr), "unauthorized") {
			t.Errorf("anonymous skopeo inspect of the private distribution: stderr lacks \"unauthorized\":\n%s", r.Stderr)
		}
		out := home.Bash(t, "NAME="+private+"\n"+curlTokenFlow).Must(t).Stdout
		if first := strings.Fields(out); len(first) < 3 || first[0] != "401" || first[1] != "200" || first[2] != "401" {
			t.Errorf("anonymous curl token flow on the private distribution: %q, want 401 (challenge), 200 (anonymous token), 401 (insufficient scope)", out)
		}
		if after := hub.Counts(); after != before {
			t.Errorf("anonymous requests to the private distribution reached the upstream:\nbefore %+v\nafter  %+v", before, after)
		}

		if r := home.Run(t, "podman", "login", "-u", harness.Username, "-p", "wrong"+harness.Password, reg); r.Code == 0 {
			t.Errorf("podman login with a wrong password succeeded")
		}
		home.Run(t, "podman", "login", "-u", harness.Username, "-p", harness.Password, reg).Must(t)
		home.Run(t, "podman", "pull", reg+"/"+private).Must(t)
		if got := strings.TrimSpace(home.Run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", reg+"/"+private).Must(t).Stdout); got != img.ManifestDigest {
			t.Errorf("podman pulled %s, want %s", got, img.ManifestDigest)
		}
		home.Run(t, "podman", "logout", reg).Must(t)
		if r := home.Run(t, "podman", "pull", reg+"/"+private); r.Code == 0 {
			t.Errorf("podman pull of the private distribution after logout succeeded")
		}

		raw := home.Run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", harness.Username+":"+harness.Password, "docker://"+reg+"/"+private).Must(t).Stdout
		if got := client.Digest([]byte(raw)); got != img.ManifestDigest {
			t.Errorf("skopeo --creds read a manifest with digest %s, want %s", got, img.ManifestDigest)
		}
		out = home.Bash(t, "NAME="+private+"\nCREDS="+harness.Username+":"+harness.Password+"\n"+curlTokenFlow).Must(t).Stdout
		if f := strings.Fields(out); len(f) != 4 || f[0] != "401" || f[1] != "200" || f[2] != "200" || "sha256:"+f[3] != img.ManifestDigest {
			t.Errorf("the admin's curl token flow: %q, want 401 200 200 and the manifest %s", out, img.ManifestDigest)
		}

		// The seed's anonymous pull through a public pull-through distribution.
		home.Run(t, "podman", "pull", reg+"/pub/library/busybox").Must(t)
	})
}

// TestTokenAuthDisabled: PULPGO_TOKEN_AUTH=false gives the Basic-only registry: Basic
// challenges, no token endpoint, and podman logs in and pulls private content with Basic
// credentials.
func TestTokenAuthDisabled(t *testing.T) {
	client.NeedTools(t, "podman")
	ctx := client.Context(t)
	hub := client.StartHub(t)
	img, err := hub.PushSmall(ctx, "library/busybox", "latest")
	if err != nil {
		t.Fatal(err)
	}
	srv := harness.Start(t, harness.Options{Engine: testenv.Embedded(), Env: []string{"PULPGO_TOKEN_AUTH=false"}})
	e := &env{srv: srv, api: &apiClient{&client.API{Base: srv.URL, HTTP: newHTTPClient()}},
		reg: newRegClient(srv.URL, "", ""), admin: newRegClient(srv.URL, harness.Username, harness.Password)}
	e.createCache(t, "priv", hub.URL(), nil, map[string]any{"private": true})
	const private = "priv/library/busybox"

	ping := expectStatus(t, e.reg, http.MethodGet, "/v2/", http.StatusUnauthorized, "UNAUTHORIZED")
	if got := ping.Header.Get("WWW-Authenticate"); got != `Basic realm="pulpgo"` {
		t.Errorf("GET /v2/ challenge %q, want Basic", got)
	}
	denied := expectStatus(t, e.reg, http.MethodGet, "/v2/"+private+"/manifests/latest", http.StatusUnauthorized, "UNAUTHORIZED")
	if got := denied.Header.Get("WWW-Authenticate"); got != `Basic realm="pulpgo"` {
		t.Errorf("private manifest challenge %q, want Basic", got)
	}
	expectStatus(t, e.reg, http.MethodGet, "/token/?service="+srv.Addr, http.StatusNotFound)

	home := harness.NewClientHome(t, srv)
	home.PodmanEnv(t)
	if r := home.Run(t, "podman", "pull", home.Addr+"/"+private); r.Code == 0 {
		t.Errorf("anonymous podman pull of the private distribution succeeded")
	}
	home.Run(t, "podman", "login", "-u", harness.Username, "-p", harness.Password, home.Addr).Must(t)
	home.Run(t, "podman", "pull", home.Addr+"/"+private).Must(t)
	e.admin.mustPull(t, private, "latest", img.ManifestDigest)
}

// TestTokenKeyFile: with --token-key the server signs with that file's key (its kid in the
// header, its public key verifying the signature), not with a key of its own.
func TestTokenKeyFile(t *testing.T) {
	pemBytes, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := token.ParseKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	srv := harness.Start(t, harness.Options{Engine: testenv.Embedded(), Args: []string{"--token-key", path}})
	realm := srv.URL + "/token/"
	anon := &client.Registry{HTTP: newHTTPClient()}
	s, err := anon.Token(client.Context(t), client.Challenge{Realm: realm, Service: srv.Addr, Scopes: []string{"repository:x:pull"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := key.Verify(time.Now(), s, realm, srv.Addr)
	if err != nil {
		t.Fatalf("the token does not verify with the --token-key file's key: %v", err)
	}
	if c.Subject != "" || len(c.Access) != 1 || c.Access[0].Name != "x" || len(c.Access[0].Actions) != 0 {
		t.Errorf("claims %+v, want an anonymous token listing x with no action", c)
	}
	if b, err := os.ReadFile(srv.LogFile); err != nil || strings.Contains(string(b), "PRIVATE KEY") {
		t.Errorf("the server's log shows the key (or cannot be read: %v)", err)
	}
}
