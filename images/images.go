// Package images embeds Berth's image recipes: one directory per image ("debian-12"),
// holding recipe.yaml, metadata.yaml and customize.sh. shared/imagebuild builds them.
package images

import "embed"

// FS holds the recipe directories at its top level.
//
//go:embed debian-12
var FS embed.FS
