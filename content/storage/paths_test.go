package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pulpgo/pulpgo/content/storage"
)

func TestBlobPath(t *testing.T) {
	hex64 := "ab" + strings.Repeat("0123456789abcdef", 4)[2:]
	hex128 := strings.Repeat("f", 128)
	tests := []struct {
		digest string
		want   string // "" means *InvalidPathError
	}{
		{"sha256:" + hex64, "blobs/sha256/ab/" + hex64},
		{"sha512:" + hex128, "blobs/sha512/ff/" + hex128},
		{"", ""},
		{hex64, ""},
		{"sha256:", ""},
		{"sha256:" + hex64[:63], ""},
		{"sha256:" + hex64 + "0", ""},
		{"sha256:" + strings.ToUpper(hex64), ""},
		{"SHA256:" + hex64, ""},
		{"sha256:../../" + hex64[:58], ""},
		{"sha256:" + hex64[:62] + "/x", ""},
		{"sha256:" + hex64[:63] + "g", ""},
		{"sha384:" + strings.Repeat("a", 96), ""},
		{"sha512:" + hex64, ""},
		{"sha256:" + hex64 + "\x00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.digest, func(t *testing.T) {
			got, err := storage.BlobPath(tt.digest)
			if tt.want == "" {
				var ip *storage.InvalidPathError
				if !errors.As(err, &ip) || ip.Path != tt.digest {
					t.Fatalf("BlobPath = %q, %v; want *InvalidPathError naming the digest", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("BlobPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
