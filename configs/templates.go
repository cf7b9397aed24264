package configs

import "embed"

// Templates holds the Dockerfile templates (text/template) of generated projects, under
// templates/: python-base.Dockerfile.tmpl renders the base (dependency) image and
// python-app.Dockerfile.tmpl the app image on top of it. They are embedded so that the binary
// needs no files beside it; cmd/gantry hands them to the Docker executor.
//
//go:embed templates/*.tmpl
var Templates embed.FS
