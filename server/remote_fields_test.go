package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate.
func selfSigned(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestContainerRemoteFields: every field of Pulp's ContainerRemote is accepted, checked and
// shown as pulp_container 2.29 does, and a refused body changes nothing.
func TestContainerRemoteFields(t *testing.T) {
	runAPI(t, func(t *testing.T, e *env) {
		base := func(name string, more map[string]any) map[string]any {
			m := map[string]any{"name": name, "url": "https://registry.example", "upstream_name": "library/busybox"}
			for k, v := range more {
				m[k] = v
			}
			return m
		}
		{ // tag filters
			m := e.create(remotes, base("tags1", map[string]any{"include_tags": []string{"1.*"}, "exclude_tags": []string{"*-rc"}}))
			jsonEq(t, mustJSON(t, []any{m["includes"], m["excludes"], m["include_tags"], m["exclude_tags"]}), `[["1.*"], ["*-rc"], null, null]`)
			if _, ok := m["include_tags"]; ok {
				t.Error("include_tags is write-only")
			}
		}
		{ // tag filters merged
			m := e.create(remotes, base("tags3", map[string]any{"includes": []string{"a"}, "include_tags": []string{"b"},
				"excludes": []string{"x"}, "exclude_tags": []string{}}))
			jsonEq(t, mustJSON(t, []any{m["includes"], m["excludes"]}), `[["a", "b"], ["x"]]`)
			// A PATCH with include_tags alone replaces includes; an empty one changes nothing.
			e.waitTaskOK(e.patch(href(m), map[string]any{"include_tags": []string{"c"}}).taskHref(t))
			e.patch(href(m), map[string]any{"exclude_tags": []string{}}).expect(t, http.StatusOK)
			got := e.get(href(m)).expect(t, http.StatusOK).obj(t)
			jsonEq(t, mustJSON(t, []any{got["includes"], got["excludes"]}), `[["c"], ["x"]]`)
		}
		{ // policies
			for _, p := range []string{"immediate", "on_demand", "streamed"} {
				if m := e.create(remotes, base("policy-"+p, map[string]any{"policy": p})); m["policy"] != p {
					t.Errorf("policy %v, want %s", m["policy"], p)
				}
			}
			if m := e.create(remotes, base("policy-default", nil)); m["policy"] != "immediate" {
				t.Errorf("default policy %v", m["policy"])
			}
		}
		{ // certificates
			cert := selfSigned(t)
			m := e.create(remotes, base("certs", map[string]any{"ca_cert": "my CA:\n" + cert + "trailing words\n", "client_cert": cert}))
			if m["ca_cert"] != cert || m["client_cert"] != cert {
				t.Errorf("ca_cert %q, client_cert %q: want only the certificate", m["ca_cert"], m["client_cert"])
			}
		}
		{ // numbers and timeouts
			m := e.create(remotes, base("numbers", map[string]any{"download_concurrency": 3, "rate_limit": 5, "max_retries": 2,
				"total_timeout": 1.5, "connect_timeout": 0, "sock_connect_timeout": 2, "sock_read_timeout": 3,
				"headers": []map[string]string{{"X-Test": "1"}}, "sigstore": "https://sigstore.example"}))
			jsonEq(t, mustJSON(t, []any{m["download_concurrency"], m["rate_limit"], m["max_retries"], m["total_timeout"],
				m["connect_timeout"], m["sock_connect_timeout"], m["sock_read_timeout"], m["headers"], m["sigstore"]}),
				`[3, 5, 2, 1.5, 0, 2, 3, [{"X-Test": "1"}], "https://sigstore.example"]`)
		}

		before := len(e.get(remotes+"?limit=1000").expect(t, http.StatusOK).results(t))
		cases := []struct {
			name string
			body map[string]any
			want string
		}{
			{"download_concurrency 0", base("bad", map[string]any{"download_concurrency": 0}),
				`{"download_concurrency": ["Ensure this value is greater than or equal to 1."]}`},
			{"download_concurrency negative", base("bad", map[string]any{"download_concurrency": -4}),
				`{"download_concurrency": ["Ensure this value is greater than or equal to 1."]}`},
			{"download_concurrency text", base("bad", map[string]any{"download_concurrency": "many"}),
				`{"download_concurrency": ["A valid integer is required."]}`},
			{"negative timeout", base("bad", map[string]any{"total_timeout": -1}),
				`{"total_timeout": ["Ensure this value is greater than or equal to 0.0."]}`},
			{"policy", base("bad", map[string]any{"policy": "sometimes"}), `{"policy": ["\"sometimes\" is not a valid choice."]}`},
			{"include_tags not a list", base("bad", map[string]any{"include_tags": "latest"}),
				`{"include_tags": ["Expected a list of items but got type \"str\"."]}`},
			{"proxy with credentials", base("bad", map[string]any{"proxy_url": "http://user:pw@proxy.example"}),
				`{"proxy_url": ["proxy_url must not contain credentials"]}`},
			{"negative max_retries", base("bad", map[string]any{"max_retries": -1}),
				`{"max_retries": ["Ensure this value is greater than or equal to 0."]}`},
			{"sigstore not a URL", base("bad", map[string]any{"sigstore": "ftp://sigstore.example"}), `{"sigstore": ["Enter a valid URL."]}`},
			{"ca_cert without certificate", base("bad", map[string]any{"ca_cert": "junk"}),
				`{"ca_cert": ["No ca_cert specified in string junk"]}`},
			{"upstream_name blank", base("bad", map[string]any{"upstream_name": ""}), `{"upstream_name": ["This field may not be blank."]}`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.post(remotes, c.body).bodyIs(t, http.StatusBadRequest, c.want)
			})
		}
		if after := len(e.get(remotes+"?limit=1000").expect(t, http.StatusOK).results(t)); after != before {
			t.Errorf("%d remotes after refused creates, want %d", after, before)
		}
		// pulp_container 2.29 does not check a container remote's proxy credentials; the
		// pull-through remote's serializer does.
		e.create(remotes, base("proxy-creds", map[string]any{"proxy_username": "u", "proxy_password": "p"}))
		pt := map[string]any{"name": "pt", "url": "https://registry.example"}
		for _, c := range []struct {
			more map[string]any
			want string
		}{
			{map[string]any{"proxy_username": "u", "proxy_password": "p"}, `{"non_field_errors": ["proxy credentials cannot be specified without a proxy"]}`},
			{map[string]any{"proxy_url": "http://proxy.example", "proxy_username": "u"}, `{"non_field_errors": ["proxy username and password can only be specified together"]}`},
		} {
			body := map[string]any{}
			for k, v := range pt {
				body[k] = v
			}
			for k, v := range c.more {
				body[k] = v
			}
			e.post(ptRemotes, body).bodyIs(t, http.StatusBadRequest, c.want)
		}
		ptm := e.create(ptRemotes, pt)
		e.patch(href(ptm), map[string]any{"proxy_password": "p"}).bodyIs(t, http.StatusBadRequest,
			`{"non_field_errors": ["proxy credentials cannot be specified without a proxy"]}`)

		// A refused PATCH changes nothing either.
		m := e.create(remotes, base("kept", map[string]any{"download_concurrency": 2}))
		e.patch(href(m), map[string]any{"download_concurrency": 0}).bodyIs(t, http.StatusBadRequest,
			`{"download_concurrency": ["Ensure this value is greater than or equal to 1."]}`)
		e.patch(href(m), map[string]any{"max_retries": -3}).bodyIs(t, http.StatusBadRequest,
			`{"max_retries": ["Ensure this value is greater than or equal to 0."]}`)
		if got := e.get(href(m)).expect(t, http.StatusOK).obj(t); got["download_concurrency"] != float64(2) || got["pulp_last_updated"] != m["pulp_last_updated"] {
			t.Errorf("after refused patches: %v", got)
		}
	})
}
