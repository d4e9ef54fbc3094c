package main

import (
	"strings"
	"testing"
)

// TestStorageSettings checks the object storage settings: s3:// URLs only, the redirect only
// with S3, the environment variable, and path style by default.
func TestStorageSettings(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--storage", "s3://bucket/some/prefix"}, ""},
		{[]string{"--storage", "s3://bucket", "--storage-redirect"}, ""},
		{[]string{"--storage", "/var/lib/blobs"}, "s3://bucket[/prefix]"},
		{[]string{"--storage", "https://bucket/prefix"}, "s3://bucket[/prefix]"},
		{[]string{"--storage", "s3://user:secret@bucket/prefix"}, "s3://bucket[/prefix]"},
		{[]string{"--storage", "s3:///prefix"}, "s3://bucket[/prefix]"},
		{[]string{"--storage", "s3://bucket/a/../b"}, "beginning with"},
		{[]string{"--storage-redirect"}, "--storage-redirect needs --storage"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, err := parseConfig("serve", append([]string{"--data-dir", t.TempDir()}, tt.args...))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !c.Store.PathStyle {
					t.Error("path-style addressing is off by default")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), ":secret@") {
				t.Errorf("the error repeats the URL's password: %v", err)
			}
		})
	}
	t.Setenv("PULPGO_STORAGE", "s3://from-env/p")
	t.Setenv("PULPGO_S3_SECRET_KEY", "k")
	c, err := parseConfig("serve", []string{"--data-dir", t.TempDir()})
	if err != nil || c.Store.URL != "s3://from-env/p" || c.Store.SecretKey != "k" {
		t.Fatalf("from the environment: %+v, %v", c, err)
	}
}
