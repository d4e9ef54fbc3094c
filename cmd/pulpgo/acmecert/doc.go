// Package acmecert gets and renews the certificates of pulpgo's HTTPS listeners from an ACME
// CA (Let's Encrypt by default) with certmagic: HTTP-01 on a plain-HTTP listener, TLS-ALPN-01
// on the TLS listener, or DNS-01 through a DNS server that takes RFC 2136 updates signed with
// TSIG. Certificates and the ACME account live in a directory (the data dir's acme/); renewal
// runs in the background, and a renewed certificate is served without a restart.
package acmecert
