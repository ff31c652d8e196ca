package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/shared/project"
)

// The routes of the API are endpoints, plus LXD's paths that Berth does not serve
// (api_lxd.go: 501), plus /1.0/containers/...: LXD 5.0 still serves the instance tree
// under its old name, and tools written before instances existed call it. Those routes
// run the same handlers; the collection the request came through rides in its context so
// that the URLs a handler returns stay under it.

// route is one registered path and the endpoint that answers it.
type route struct {
	path       string
	ep         APIEndpoint
	collection string // "containers" for the alias, else ""
}

const (
	collectionInstances  = "instances"
	collectionContainers = "containers"
)

func routes(eps []APIEndpoint) []route {
	var out []route
	for _, ep := range withUnserved(eps) {
		path := "/1.0"
		if ep.Path != "" {
			path += "/" + ep.Path
		}

		out = append(out, route{path: path, ep: ep})
		rest, ok := strings.CutPrefix(ep.Path, collectionInstances)
		if ok && (rest == "" || rest[0] == '/') {
			out = append(out, route{path: "/1.0/" + collectionContainers + rest, ep: ep, collection: collectionContainers})
		}
	}

	return out
}

type collectionKey struct{}

func (rt route) withCollection(r *http.Request) *http.Request {
	if rt.collection == "" {
		return r
	}

	return r.WithContext(context.WithValue(r.Context(), collectionKey{}, rt.collection))
}

// instanceCollection is "containers" for a request that came through /1.0/containers,
// else "instances".
func instanceCollection(r *http.Request) string {
	c, _ := r.Context().Value(collectionKey{}).(string)
	if c == "" {
		return collectionInstances
	}

	return c
}

// instanceURL is the API path of an instance under the collection r came through.
func instanceURL(r *http.Request, key string) string {
	return "/1.0/" + instanceCollection(r) + "/" + url.PathEscape(project.Name(key))
}
