package acmecert

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// RFC2136 adds and removes the TXT records of DNS-01 challenges with dynamic DNS updates
// (RFC 2136) signed with a TSIG key (RFC 8945). It is the libdns provider certmagic's DNS-01
// solver calls; the TSIG secret is used only to sign and never appears in its errors.
type RFC2136 struct {
	// Server is the host:port of the DNS server that takes the updates (the zone's primary).
	Server string
	// KeyName is the name of the TSIG key, as the server knows it.
	KeyName string
	// KeyAlg is the TSIG algorithm: hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or
	// hmac-sha512.
	KeyAlg string
	// Secret is the key's secret in base64.
	Secret string
}

// tsigAlgs maps the algorithm names of the settings to the names TSIG puts on the wire.
var tsigAlgs = map[string]string{
	"hmac-sha1": dns.HmacSHA1, "hmac-sha224": dns.HmacSHA224, "hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384, "hmac-sha512": dns.HmacSHA512,
}

// Check reports what is missing or wrong in p's settings, naming the setting and never
// echoing the secret.
func (p *RFC2136) Check() error {
	var errs []error
	if p.Server == "" {
		errs = append(errs, errors.New("the RFC 2136 DNS server (host:port) is not set"))
	} else if _, _, err := net.SplitHostPort(p.Server); err != nil {
		errs = append(errs, fmt.Errorf("the RFC 2136 DNS server %q is not host:port", p.Server))
	}
	if p.KeyName == "" {
		errs = append(errs, errors.New("the TSIG key name is not set"))
	}
	if _, ok := tsigAlgs[strings.ToLower(strings.TrimSuffix(p.KeyAlg, "."))]; !ok {
		errs = append(errs, fmt.Errorf("the TSIG algorithm %q is not one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", p.KeyAlg))
	}
	if p.Secret == "" {
		errs = append(errs, errors.New("the TSIG secret is not set"))
	} else if _, err := base64.StdEncoding.DecodeString(p.Secret); err != nil {
		errs = append(errs, errors.New("the TSIG secret is not base64"))
	}
	return errors.Join(errs...)
}

// AppendRecords adds recs (TXT records only) to zone in one signed update.
func (p *RFC2136) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return p.update(ctx, zone, "add", recs, (*dns.Msg).Insert)
}

// DeleteRecords removes recs (TXT records with their values) from zone in one signed update.
func (p *RFC2136) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	return p.update(ctx, zone, "remove", recs, (*dns.Msg).Remove)
}

// update sends one signed update of zone doing op (Insert or Remove) with recs.
func (p *RFC2136) update(ctx context.Context, zone, name string, recs []libdns.Record, op func(*dns.Msg, []dns.RR)) ([]libdns.Record, error) {
	rrs, err := p.txts(zone, recs)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	op(m, rrs)
	if err := p.exchange(ctx, zone, name, m); err != nil {
		return nil, err
	}
	return recs, nil
}

// txts turns recs into TXT resource records of zone.
func (p *RFC2136) txts(zone string, recs []libdns.Record) ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(recs))
	for _, r := range recs {
		rr := r.RR()
		if rr.Type != "TXT" {
			return nil, fmt.Errorf("RFC 2136 update of zone %s: record %s is of type %s; only TXT records are written", zone, rr.Name, rr.Type)
		}
		ttl := uint32(rr.TTL / time.Second)
		if ttl == 0 {
			ttl = 60
		}
		out = append(out, &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(libdns.AbsoluteName(rr.Name, zone)),
			Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: splitTXT(rr.Data)})
	}
	return out, nil
}

// splitTXT cuts s into the 255-byte strings a TXT record holds.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out, s = append(out, s[:255]), s[255:]
	}
	return append(out, s)
}

// exchange sends the signed update m to the server over TCP and checks its answer.
func (p *RFC2136) exchange(ctx context.Context, zone, op string, m *dns.Msg) error {
	keyName := dns.Fqdn(p.KeyName)
	m.SetTsig(keyName, tsigAlgs[strings.ToLower(strings.TrimSuffix(p.KeyAlg, "."))], 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{keyName: p.Secret}}
	r, _, err := c.ExchangeContext(ctx, m, p.Server)
	if err != nil {
		return fmt.Errorf("RFC 2136 %s in zone %s at %s with TSIG key %s: %w", op, zone, p.Server, p.KeyName, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("RFC 2136 %s in zone %s at %s with TSIG key %s: the server answered %s", op, zone, p.Server, p.KeyName, dns.RcodeToString[r.Rcode])
	}
	return nil
}
