package server

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// The domains of a program's script settings: cookie_domain, the domain
// its referral cookie is written for, and link_domains, the merchant's
// other domains whose links carry the referral.

const (
	maxLinkDomains = 20
	maxDomainLen   = 253 // RFC 1035, without the trailing dot
	maxDNSLabelLen = 63
)

// hostnameProblem says what keeps d (trimmed, lower case) from being a
// bare ASCII host name of two labels or more, or "" when it is one. The
// message completes a sentence starting with the field's name.
func hostnameProblem(d string) string {
	switch {
	case d == "":
		return "is empty: enter a domain such as shop.example"
	case strings.Contains(d, "://"):
		return "must be a domain such as shop.example, without http:// or https://"
	case strings.ContainsAny(d, "/?#"):
		return "must be a domain such as shop.example, without a path"
	case net.ParseIP(strings.Trim(d, "[]")) != nil:
		return "must be a domain name, not an IP address"
	case strings.Contains(d, ":"):
		return "must be a domain such as shop.example, without a port"
	case len(d) > maxDomainLen:
		return "is too long: a domain name has at most 253 characters"
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "must have at least two parts, such as shop.example"
	}
	for _, l := range labels {
		if l == "" || len(l) > maxDNSLabelLen || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return "must be a domain name of letters, digits and hyphens, in parts of 1 to 63 characters " +
				"separated by dots (write an international name in its xn-- form)"
		}
	}
	// Browsers read a host ending in a number as an IPv4 address.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "must be a domain name, not an IP address"
	}
	return ""
}

// isPublicSuffix reports whether d is a suffix under which anyone may
// register a domain (com, co.uk, github.io): browsers refuse a cookie for
// one, and a link to every site under one must not carry the referral.
func isPublicSuffix(d string) bool {
	suffix, _ := publicsuffix.PublicSuffix(d)
	return suffix == d
}

// normalizeCookieDomain validates a cookie_domain and returns it in
// canonical form: lower case, without the leading dot an old-style cookie
// domain has. "" clears the setting.
func normalizeCookieDomain(s string) (string, error) {
	d := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), ".")
	if d == "" {
		return "", nil
	}
	if p := hostnameProblem(d); p != "" {
		return "", invalid("cookie_domain", "cookie_domain "+p+".")
	}
	if isPublicSuffix(d) {
		return "", invalid("cookie_domain", "cookie_domain cannot be a public suffix such as com, co.uk or github.io, "+
			"where anyone can register a site (browsers refuse such a cookie): use your own domain, such as shop.co.uk.")
	}
	return d, nil
}

// normalizeLinkDomains validates link_domains and returns them lower case,
// without duplicates, in the order given.
func normalizeLinkDomains(list []string) ([]string, error) {
	if len(list) > maxLinkDomains {
		return nil, invalid("link_domains", "At most 20 link domains.")
	}
	out := []string{}
	seen := map[string]bool{}
	for i, s := range list {
		d := strings.ToLower(strings.TrimSpace(s))
		field := fmt.Sprintf("link_domains[%d]", i)
		if p := hostnameProblem(d); p != "" {
			return nil, invalid(field, "A link domain "+p+".")
		}
		if isPublicSuffix(d) {
			return nil, invalid(field, "A link domain cannot be a public suffix such as com, co.uk or github.io: "+
				"links to every site under it would carry the referral. Use your own domain, such as checkout.shop.example.")
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out, nil
}

// cookieDomainCovers reports whether a cookie written for domain d is
// sent to at least one host the allowed origins allow: an origin's host is
// d or under it. A wildcard origin https://*.shop.example counts as
// shop.example (every host it allows is under that), and also covers a d
// it allows itself, one label under it (www.shop.example).
func cookieDomainCovers(d string, origins []string) bool {
	for _, o := range origins {
		_, host, _ := strings.Cut(o, "://")
		if strings.HasPrefix(host, "[") { // IPv6: no domain covers it
			continue
		}
		host, _, _ = strings.Cut(host, ":")
		if h := strings.TrimPrefix(host, "*."); h == d || strings.HasSuffix(h, "."+d) {
			return true
		}
		if suffix, ok := strings.CutPrefix(host, "*."); ok {
			if label, ok := strings.CutSuffix(d, "."+suffix); ok && !strings.Contains(label, ".") {
				return true
			}
		}
	}
	return false
}
