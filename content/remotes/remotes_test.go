package remotes

import (
	"testing"

	"github.com/pulpgo/pulpgo/models"
)

// TestClientsSharedBySettings checks that remotes with the same settings (the images pulled
// through one pull-through remote, an on_demand remote of the same registry) share one
// upstream client, and that other settings get their own.
func TestClientsSharedBySettings(t *testing.T) {
	cs := NewClients(0)
	a := &models.Remote{ID: "a", Name: "cache/a", URL: "http://127.0.0.1:1", TLSValidation: true}
	b := &models.Remote{ID: "b", Name: "cache/b", URL: "http://127.0.0.1:1/", TLSValidation: true}
	other := &models.Remote{ID: "c", Name: "other", URL: "http://127.0.0.1:2", TLSValidation: true}
	ca, err := cs.For(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := cs.For(b)
	co, _ := cs.For(other)
	if ca.Client != cb.Client || ca.Key != cb.Key {
		t.Error("remotes with the same settings got two clients")
	}
	if ca.Client == co.Client || ca.Key == co.Key {
		t.Error("remotes with different settings share a client")
	}
}
