// Package potrack holds the files the binary carries with it: the browser
// script's TypeScript sources (bundled by esbuild when the server starts) and
// the admin web page's templates and assets.
package potrack

import (
	"embed"
	"io/fs"
)

//go:embed snippet/*.ts
var snippetFiles embed.FS

//go:embed all:web
var webFiles embed.FS

// SnippetFS is the snippet/ folder: po.ts and the modules it imports.
var SnippetFS fs.FS = mustSub(snippetFiles, "snippet")

// WebFS is the web/ folder: admin templates, stylesheet and demo shop pages.
var WebFS fs.FS = mustSub(webFiles, "web")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
