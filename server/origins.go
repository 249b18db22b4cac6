package server

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// normalizeOrigin validates an allowed_origins entry and returns it in
// canonical form: scheme://host[:port], lower case, no path. The host may
// start with one wildcard label ("https://*.shop.example").
func normalizeOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not an origin such as https://shop.example", s)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q must be only scheme, host and port, without a path", s)
	}
	host := strings.ToLower(u.Hostname())
	labels := host
	if strings.HasPrefix(host, "*.") {
		labels = host[2:]
		if !strings.Contains(labels, ".") && labels != "localhost" {
			return "", fmt.Errorf("%q: a wildcard must be followed by a domain with a dot, such as *.shop.example", s)
		}
	}
	if net.ParseIP(strings.Trim(labels, "[]")) == nil {
		for _, l := range strings.Split(labels, ".") {
			if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				return "", fmt.Errorf("%q has an invalid host name", s)
			}
		}
	} else if strings.HasPrefix(host, "*.") {
		return "", fmt.Errorf("%q: a wildcard cannot precede an IP address", s)
	}
	out := scheme + "://" + host
	if strings.Contains(host, ":") { // IPv6
		out = scheme + "://[" + host + "]"
	}
	// Browsers never send a scheme's default port in Origin, so an entry
	// that names it would never match.
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443") && !(scheme == "http" && p == "80") {
		out += ":" + p
	}
	return out, nil
}

// originAllowed reports whether a browser Origin matches the list: exactly,
// or through a one-level wildcard with the same scheme and port. An empty
// list allows nothing.
func originAllowed(origin string, allowed []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" {
		return false
	}
	origin = strings.ToLower(origin)
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	for _, a := range allowed {
		if a == origin {
			return true
		}
		rest, ok := strings.CutPrefix(a, scheme+"://*.")
		if !ok {
			continue
		}
		suffix, aPort, _ := strings.Cut(rest, ":")
		if aPort != port {
			continue
		}
		label, ok := strings.CutSuffix(host, "."+suffix)
		if ok && label != "" && !strings.Contains(label, ".") {
			return true
		}
	}
	return false
}
