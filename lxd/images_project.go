package main

import (
	"context"
	"net/url"

	"github.com/berth-dev/berth/shared/project"
)

// Images and aliases belong to the image set of the request's project (its own with
// features.images, the default project's otherwise: lxd/imagestore resolves it). Their
// URLs and events name the request's project as LXD writes them: ?project= outside the
// default project, so a client follows them back into the same image set.

// imageURL is the API URL of image fp seen from project proj.
func imageURL(proj, fp string) string {
	return inProjectURL("/1.0/images/"+url.PathEscape(fp), proj)
}

// aliasURL is the API URL of image alias name seen from project proj.
func aliasURL(proj, name string) string {
	return inProjectURL("/1.0/images/aliases/"+url.PathEscape(name), proj)
}

func inProjectURL(u, proj string) string {
	if proj == "" || proj == project.Default {
		return u
	}

	return u + "?project=" + url.QueryEscape(proj)
}

// imagesProject is the project whose image set proj uses (itself with features.images,
// the default project otherwise).
func (d *Daemon) imagesProject(ctx context.Context, proj string) (string, error) {
	if proj == "" || proj == project.Default {
		return project.Default, nil
	}

	return d.images.ImagesProject(ctx, proj)
}
