package pullthrough

import "testing"

func TestAllowed(t *testing.T) {
	tests := []struct {
		name               string
		includes, excludes []string
		want               bool
	}{
		{"library/busybox", nil, nil, true},
		{"library/busybox", []string{"library/*"}, nil, true},
		{"library/busybox", []string{"*"}, []string{"library/busy*"}, false},
		{"library/debian", []string{"library/*"}, []string{"library/debian"}, false},
		{"library/debian", nil, []string{"library/busybox"}, false}, // Pulp: excludes alone allow nothing
		{"a/b/c", []string{"a/*"}, nil, true},                       // "*" crosses "/"
		{"library/alpine", []string{"library/alp?ne"}, nil, true},
		{"library/alpine", []string{"library/[ab]lpine"}, nil, true},
		{"library/alpine", []string{"library/[!a]lpine"}, nil, false},
		{"Library/alpine", []string{"library/*"}, nil, false}, // case-sensitive
		{"library/x.y", []string{"library/x.y"}, nil, true},
		{"library/xzy", []string{"library/x.y"}, nil, false}, // "." is literal
	}
	for _, tt := range tests {
		if got := allowed(tt.name, tt.includes, tt.excludes); got != tt.want {
			t.Errorf("allowed(%q, %v, %v) = %v, want %v", tt.name, tt.includes, tt.excludes, got, tt.want)
		}
	}
}
