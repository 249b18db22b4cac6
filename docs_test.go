package potrack

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/potrack/potrack/internal/testenv"
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

// TestDeploymentUnits: the systemd units in docs/deployment.md pass
// systemd-analyze verify (an unknown key, a typo in a section or a
// missing binary is reported), with the binary path pointed at one that
// exists here.
func TestDeploymentUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Missing(t, "systemd-analyze", "install Debian's systemd package")
	}
	md, err := os.ReadFile("docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units []string
	blocks := regexp.MustCompile("(?s)```ini\n(.*?)```").FindAllStringSubmatch(string(md), -1)
	for i, b := range blocks {
		// A block holds one unit, or several each under a comment naming its file.
		parts := regexp.MustCompile(`(?m)^# /etc/systemd/system/(\S+)\n`).Split(b[1], -1)
		names := regexp.MustCompile(`(?m)^# /etc/systemd/system/(\S+)\n`).FindAllStringSubmatch(b[1], -1)
		if len(names) == 0 {
			names, parts = [][]string{{"", fmt.Sprintf("unit%d.service", i)}}, []string{"", b[1]}
		}
		for j, n := range names {
			body := strings.ReplaceAll(parts[j+1], "/usr/local/bin/potrack", self)
			path := filepath.Join(dir, n[1])
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			units = append(units, path)
		}
	}
	if len(units) < 3 {
		t.Fatalf("found %d units in docs/deployment.md, want the service, the back-up service and its timer", len(units))
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
