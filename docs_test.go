package potrack

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// markdownLink matches [text](target) and ![alt](target); targets with a
// scheme (https:, mailto:) are not ours to check.
var markdownLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// TestDocsLinks: every relative link in the README and docs/ names a file
// that exists, and every #anchor a heading of that page.
func TestDocsLinks(t *testing.T) {
	pages, _ := filepath.Glob("docs/*.md")
	pages = append(pages, "README.md")
	if len(pages) < 5 {
		t.Fatalf("expected README.md and the docs/ pages, found %v", pages)
	}
	checked := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markdownLink.FindAllSubmatch(withoutCode(text), -1) {
			target := string(m[1])
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := page
			if file != "" {
				dest = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: %s does not exist", page, target, dest)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !hasAnchor(t, dest, anchor) {
				t.Errorf("%s: link %q: %s has no heading for #%s", page, target, dest, anchor)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the pattern is broken")
	}
}

// withoutCode blanks fenced code blocks, where brackets are code, not links.
func withoutCode(md []byte) []byte {
	var out bytes.Buffer
	fenced := false
	for _, line := range bytes.SplitAfter(md, []byte("\n")) {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("```")) {
			fenced = !fenced
			continue
		}
		if !fenced {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// hasAnchor reports whether the page has a heading whose GitHub anchor is
// anchor: lower case, punctuation dropped, spaces as dashes.
func hasAnchor(t *testing.T, page, anchor string) bool {
	text, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(withoutCode(text)), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		if githubAnchor(strings.TrimLeft(line, "# ")) == anchor {
			return true
		}
	}
	return false
}

func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestGithubAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"The two commands": "the-two-commands",
		"`POST /collect`":  "post-collect",
		"Serve it under your own domain (`api_host`)": "serve-it-under-your-own-domain-api_host",
	} {
		if got := githubAnchor(heading); got != want {
			t.Errorf("%q: got %q, want %q", heading, got, want)
		}
	}
}

// TestSpecCopy: docs/spec.md is the contract in ../shared/SPEC.md, word for
// word, wherever that file is beside the checkout (as on the developers'
// machines and in CI).
func TestSpecCopy(t *testing.T) {
	shared, err := os.ReadFile("../shared/SPEC.md")
	if err != nil {
		t.Skip("no ../shared/SPEC.md beside this checkout")
	}
	copy, err := os.ReadFile("docs/spec.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, copy) {
		t.Fatal("docs/spec.md differs from ../shared/SPEC.md: cp ../shared/SPEC.md docs/spec.md")
	}
}
