package acme

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"

	"github.com/pulpgo/pulpgo/cmd/pulpgo/acmecert"
)

// TestRFC2136Updates: the DNS-01 provider adds and removes a TXT record in knotd with an
// update signed by the zone's TSIG key; an update signed with another secret, or with an
// unknown key name, is refused by the server, changes nothing, and its error carries neither
// secret.
func TestRFC2136Updates(t *testing.T) {
	t.Parallel()
	d := StartKnot(t)
	ctx := context.Background()
	name := "_acme-challenge.updates"
	txt := func() []string {
		m := new(dns.Msg)
		m.SetQuestion(name+"."+Zone+".", dns.TypeTXT)
		r, err := dns.Exchange(m, d.Addr)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, rr := range r.Answer {
			if t, ok := rr.(*dns.TXT); ok {
				out = append(out, strings.Join(t.Txt, ""))
			}
		}
		return out
	}
	rec := []libdns.Record{libdns.RR{Type: "TXT", Name: name, Data: "token-value", TTL: time.Minute}}

	other := make([]byte, 32)
	_, _ = rand.Read(other)
	wrongSecret := base64.StdEncoding.EncodeToString(other)
	for _, bad := range []acmecert.RFC2136{
		{Server: d.Addr, KeyName: d.KeyName, KeyAlg: d.KeyAlg, Secret: wrongSecret},
		{Server: d.Addr, KeyName: "intruder.", KeyAlg: d.KeyAlg, Secret: d.Secret},
	} {
		_, err := bad.AppendRecords(ctx, Zone+".", rec)
		if err == nil {
			t.Errorf("update with key %s and a wrong secret was accepted", bad.KeyName)
		} else if t.Logf("refused: %v", err); strings.Contains(err.Error(), wrongSecret) || strings.Contains(err.Error(), d.Secret) {
			t.Errorf("the error carries a secret: %v", err)
		}
	}
	if got := txt(); len(got) != 0 {
		t.Fatalf("refused updates changed the zone: TXT %v", got)
	}

	p := &acmecert.RFC2136{Server: d.Addr, KeyName: d.KeyName, KeyAlg: d.KeyAlg, Secret: d.Secret}
	if _, err := p.AppendRecords(ctx, Zone+".", rec); err != nil {
		t.Fatal(err)
	}
	if got := txt(); !slices.Equal(got, []string{"token-value"}) {
		t.Fatalf("after the update: TXT %v, want [token-value]", got)
	}
	if _, err := p.DeleteRecords(ctx, Zone+".", rec); err != nil {
		t.Fatal(err)
	}
	if got := txt(); len(got) != 0 {
		t.Fatalf("after the removal: TXT %v, want none", got)
	}
}
