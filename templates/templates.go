// Package templates embeds the container-side template files that Berth's image recipes
// ship under templates/ in their images (rendered by lxd/images with pongo2).
package templates

import "embed"

// FS holds the *.tpl files at its top level.
//
//go:embed *.tpl
var FS embed.FS
