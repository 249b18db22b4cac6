// Package snippet bundles the po() browser script from its TypeScript sources
// and serves it. The sources are embedded by the root package (potrack.SnippetFS);
// this package must not import it, because both live in the same folder tree
// and the root package would otherwise depend on itself.
package snippet

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/evanw/esbuild/pkg/api"
	"github.com/gofiber/fiber/v2"
)

// Entry is the file that Build bundles, relative to the source fs.FS.
const Entry = "po.ts"

// Asset is the bundled script in the forms we serve.
type Asset struct {
	Raw, Gzip, Brotli []byte
	// ETag is a quoted, strong entity tag derived from Raw.
	ETag string
}

const fsNamespace = "snippetfs"

// Variants are the extensions a variant of the script may add, in the
// order their names appear in a canonical ext value: xd decorates links to
// the program's other domains, spa captures referrals in URLs reached by
// pushState, replaceState and popstate, stripe stamps Stripe Payment Links,
// pricing tables and buy buttons with the partner.
var Variants = []string{"xd", "spa", "stripe"}

// Scripts are the built variants of the script, keyed by their canonical
// ext value ("" for the default, "xd", "spa", "xd,spa", "stripe", …).
type Scripts map[string]*Asset

// Build bundles every variant of po.ts and the modules it imports from src
// with esbuild, once, in memory: the plugin reads every file from src, so
// nothing touches disk and the binary carries its sources. Call it at
// start-up with potrack.SnippetFS.
func Build(src fs.FS) (Scripts, error) {
	out := Scripts{}
	for mask := 0; mask < 1<<len(Variants); mask++ {
		var on []string
		define := map[string]string{}
		for i, v := range Variants {
			define[strings.ToUpper(v)] = strconv.FormatBool(mask&(1<<i) != 0)
			if mask&(1<<i) != 0 {
				on = append(on, v)
			}
		}
		a, err := build(src, define)
		if err != nil {
			return nil, err
		}
		out[strings.Join(on, ",")] = a
	}
	return out, nil
}

// build bundles one variant: define sets its flags (XD, SPA, STRIPE), and the
// minifier drops the code behind a false one.
func build(src fs.FS, define map[string]string) (*Asset, error) {
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{Entry},
		Bundle:            true,
		Write:             false,
		Format:            api.FormatIIFE,
		Target:            api.ES2021,
		Platform:          api.PlatformBrowser,
		Define:            define,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		LogLevel:          api.LogLevelSilent,
		Plugins:           []api.Plugin{fsPlugin(src)},
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("snippet: bundling %s: %s", Entry, strings.TrimSpace(strings.Join(msgs, "\n")))
	}
	if len(res.OutputFiles) != 1 {
		return nil, fmt.Errorf("snippet: bundling %s: got %d output files, want 1", Entry, len(res.OutputFiles))
	}
	return newAsset(res.OutputFiles[0].Contents)
}

// Variant returns the canonical ext value for a requested one: the known
// names it lists, in canonical order. Unknown names are ignored rather than
// refused: a script that fails to load loses referrals, a missing
// extension only its feature.
func Variant(ext string) string {
	var on []string
	for _, v := range Variants {
		for _, e := range strings.Split(ext, ",") {
			if strings.EqualFold(strings.TrimSpace(e), v) {
				on = append(on, v)
				break
			}
		}
	}
	return strings.Join(on, ",")
}

// Handler serves the variant the ext query parameter names (the default
// without one; Partnero's loader adds a random ?v… that is no ext).
func (s Scripts) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		return s[Variant(c.Query("ext"))].serve(c)
	}
}

// fsPlugin resolves the entry point and relative imports inside src and loads
// them from it. Bare imports (packages) are refused: the script has no
// dependencies, and a silent fall-through to node_modules on disk would make
// the build depend on the machine.
func fsPlugin(src fs.FS) api.Plugin {
	return api.Plugin{
		Name: "snippetfs",
		Setup: func(b api.PluginBuild) {
			b.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(args api.OnResolveArgs) (api.OnResolveResult, error) {
				p := args.Path
				switch {
				case args.Kind == api.ResolveEntryPoint:
				case strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../"):
					p = path.Join(path.Dir(args.Importer), p)
				default:
					return api.OnResolveResult{}, fmt.Errorf("import %q: only relative imports of files in snippet/ are allowed", p)
				}
				p = path.Clean(p)
				if !fs.ValidPath(p) {
					return api.OnResolveResult{}, fmt.Errorf("import %q: outside snippet/", args.Path)
				}
				if path.Ext(p) == "" {
					p += ".ts"
				}
				return api.OnResolveResult{Path: p, Namespace: fsNamespace}, nil
			})
			b.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: fsNamespace}, func(args api.OnLoadArgs) (api.OnLoadResult, error) {
				data, err := fs.ReadFile(src, args.Path)
				if err != nil {
					return api.OnLoadResult{}, err
				}
				contents := string(data)
				loader := api.LoaderTS
				if path.Ext(args.Path) == ".js" {
					loader = api.LoaderJS
				}
				return api.OnLoadResult{Contents: &contents, Loader: loader}, nil
			})
		},
	}
}

func newAsset(raw []byte) (*Asset, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}

	var br bytes.Buffer
	bw := brotli.NewWriterLevel(&br, brotli.BestCompression)
	if _, err := bw.Write(raw); err != nil {
		return nil, err
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}

	sum := sha256.Sum256(raw)
	return &Asset{
		Raw:    raw,
		Gzip:   gz.Bytes(),
		Brotli: br.Bytes(),
		ETag:   `"` + hex.EncodeToString(sum[:8]) + `"`,
	}, nil
}

// Handler serves the asset with its ETag, in the best encoding the client
// accepts. The script is public and loaded from merchants' pages on any
// origin, hence the wildcard CORS header. It is cached for an hour only, not
// for ever, because its URL does not change when a new version is deployed.
func (a *Asset) Handler() fiber.Handler { return a.serve }

func (a *Asset) serve(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/javascript; charset=utf-8")
	c.Set(fiber.HeaderETag, a.ETag)
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), a.ETag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	body := a.Raw
	switch ae := c.Get(fiber.HeaderAcceptEncoding); {
	case accepts(ae, "br"):
		c.Set(fiber.HeaderContentEncoding, "br")
		body = a.Brotli
	case accepts(ae, "gzip"):
		c.Set(fiber.HeaderContentEncoding, "gzip")
		body = a.Gzip
	}
	return c.Send(body)
}

// etagMatches implements the weak comparison that If-None-Match uses: a list
// of tags, each maybe W/-prefixed, or "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// accepts reports whether the Accept-Encoding header allows coding: named
// with a q above 0, or covered by "*" with a q above 0 when not named.
func accepts(header, coding string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != coding && name != "*" {
			continue
		}
		ok := qValue(params) > 0
		if name == coding {
			return ok
		}
		star = ok
	}
	return star
}

// qValue returns the q parameter in params (1 when absent or unreadable).
func qValue(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(p), "=")
		if found && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 1
			}
			return q
		}
	}
	return 1
}

// Settings are a program's settings for the script, as the snippet names
// them: the script must know them before the first thing it writes, which
// is before any answer from the server (and when none ever comes).
type Settings struct {
	ReferralParams []string
	CookieDomain   string
	LinkDomains    []string
	// RequireConsent starts the script holding everything until
	// po('consent', true); RespectDNT does not load it at all for a browser
	// that sends Do-Not-Track or Global Privacy Control.
	RequireConsent, RespectDNT bool
	// SPA loads the variant that watches pushState, replaceState and popstate.
	SPA bool
	// StripeCheckout loads the variant that stamps Stripe Payment Links,
	// pricing tables and buy buttons with the partner.
	StripeCheckout bool
}

// Exts names the variant of the script the settings need ("" for the
// default), as the ext query parameter of the script URL: link decoration
// (xd), single-page-app hooks (spa) and Stripe Checkout stamping (stripe) cost
// bytes not every site should pay.
func (s Settings) Exts() string {
	var ext []string
	if len(s.LinkDomains) > 0 {
		ext = append(ext, "xd")
	}
	if s.SPA {
		ext = append(ext, "spa")
	}
	if s.StripeCheckout {
		ext = append(ext, "stripe")
	}
	return strings.Join(ext, ",")
}

// Loader returns the inline snippet a merchant pastes: a stub for po() that
// queues calls in the same {a, q} shape as Partnero's loader (so either loader
// works with the script), the async script tag for scriptURL (with the
// variant the settings need), the settings that differ from the defaults,
// and the program's load call. Every value is JSON-encoded, which also
// escapes <, > and &, so no value can close the script element.
func Loader(scriptURL, programID string, s Settings) string {
	if ext := s.Exts(); ext != "" {
		sep := "?"
		if strings.Contains(scriptURL, "?") {
			sep = "&"
		}
		scriptURL += sep + "ext=" + ext
	}
	// Do-Not-Track and Global Privacy Control are honoured by not adding
	// the script: calls queue in the stub and nothing is written or sent.
	load := "d.head.appendChild(o)"
	if s.RespectDNT {
		load = "if(!(navigator.doNotTrack=='1'||navigator.globalPrivacyControl))" + load
	}
	var calls strings.Builder
	if s.RequireConsent {
		calls.WriteString("po('consent',false);\n")
	}
	if rp := s.ReferralParams; len(rp) > 0 && !(len(rp) == 1 && rp[0] == "aff") {
		calls.WriteString("po('settings','referral_params'," + jsValue(rp) + ");\n")
	}
	if s.CookieDomain != "" {
		calls.WriteString("po('settings','cookie_domain'," + jsValue(s.CookieDomain) + ");\n")
	}
	if len(s.LinkDomains) > 0 {
		calls.WriteString("po('settings','link_domains'," + jsValue(s.LinkDomains) + ");\n")
	}
	return "<script>(function(w,d,n,s,o){w.__partnerObject=n;function f(){var c={a:arguments,q:[]};this.push(c);return f.bind(c.q)}" +
		"w[n]=w[n]||f.bind(f.q=[]);w[n].q=w[n].q||f.q;o=d.createElement('script');o.async=1;o.src=s;" +
		load + "})(window,document,'po'," + jsValue(scriptURL) + ");\n" + calls.String() + "po('program'," +
		jsValue(programID) + ",'load');</script>"
}

// jsValue encodes v (strings or lists of them) as a JavaScript literal
// that is safe inside an HTML script element.
func jsValue(v any) string {
	// Marshalling strings cannot fail; invalid UTF-8 becomes U+FFFD.
	b, _ := json.Marshal(v)
	return string(b)
}
