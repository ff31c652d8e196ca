//go:build !berth_imagebuild

package main

import (
	"context"
	"errors"
)

// buildImage stands in for shared/imagebuild until that package exists.
func buildImage(context.Context, string, string, func(string, int)) (string, error) {
	return "", errors.New("image building is not available in this build of berth")
}
