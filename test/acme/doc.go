// Package acme tests pulpgo's ACME certificates end to end: the built binary gets its
// certificate from Pebble (Let's Encrypt's test CA, built once per machine and started by the
// tests with real validations) by HTTP-01, TLS-ALPN-01 or DNS-01, the last through RFC 2136
// updates to a knotd the tests start on a loopback port, which also answers Pebble's lookups
// of the test domain pulpgo.test. Clients trust Pebble's root and nothing else, and dial the
// test names to 127.0.0.1.
package acme
