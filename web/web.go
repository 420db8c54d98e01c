// Package web holds the admin UI's templates and static assets, embedded in
// the binary so `go build` needs no Node step.
//
// static/htmx.min.js is htmx 2.0.11 (BSD Zero-Clause), copied unchanged from
// dist/htmx.min.js of `npm pack htmx.org@2.0.11`;
// sha256 d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717.
// TestVendoredHTMXIsPinned checks the hash.
package web

import (
	"embed"
	"io/fs"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Templates is the directory of html/template files (*.html).
func Templates() fs.FS {
	sub, err := fs.Sub(templates, "templates")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return sub
}

// Static is the directory of assets served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return sub
}

// HTMXSHA256 is the sha256 of static/htmx.min.js.
const HTMXSHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
