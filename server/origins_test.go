package server

import "testing"

func TestNormalizeOrigin(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://Shop.Example", "https://shop.example"},
		{"https://shop.example/", "https://shop.example"},
		{"HTTPS://shop.example:443", "https://shop.example"},
		{"http://shop.example:80", "http://shop.example"},
		{"https://shop.example:80", "https://shop.example:80"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"https://*.shop.example", "https://*.shop.example"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{" https://shop.example ", "https://shop.example"},
		// Refused.
		{"shop.example", ""}, {"ftp://shop.example", ""}, {"https://shop.example/path", ""},
		{"https://shop.example?x=1", ""}, {"https://user@shop.example", ""}, {"https://*.com", ""},
		{"https://*", ""}, {"https://a.*.example", ""}, {"https://sh op.example", ""}, {"https://*.127.0.0.1", ""},
		{"javascript:alert(1)", ""}, {"", ""},
	}
	for _, tt := range tests {
		got, err := normalizeOrigin(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("normalizeOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestOriginAllowed(t *testing.T) {
	allowed := []string{"https://shop.example", "https://*.shop.example", "http://localhost:3000"}
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://shop.example", true},
		{"https://SHOP.example", true},
		{"https://eu.shop.example", true},
		{"https://a.b.shop.example", false}, // one level only
		{"http://eu.shop.example", false},   // the scheme must match
		{"https://eu.shop.example:8443", false},
		{"https://evilshop.example", false},
		{"https://shop.example.evil", false},
		{"http://localhost:3000", true},
		{"http://localhost:3001", false},
		{"null", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := originAllowed(tt.origin, allowed); got != tt.want {
			t.Errorf("originAllowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	if originAllowed("https://shop.example", nil) {
		t.Error("an empty list allowed an origin")
	}
}
