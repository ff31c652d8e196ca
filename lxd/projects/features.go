package projects

import (
	"context"
	"net/http"
	"sort"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

const featureProfiles = "features.profiles"

// createDefaultProfile gives a project with features.profiles its own default profile:
// empty, as LXD 5.0 makes it (no root disk, no NIC: the administrator adds what the
// project's instances should get).
func createDefaultProfile(ctx context.Context, tx *db.Tx, proj string) error {
	_, err := tx.CreateProfile(ctx, db.Profile{
		Name:        project.ProfileKey(proj, "default"),
		Description: "Default Berth profile for project " + proj,
		Config:      map[string]string{},
		Devices:     map[string]map[string]string{},
	})

	return err
}

// dropDefaultProfile deletes the own default profile of a project being deleted or
// losing features.profiles. Any other profile of its own keeps it (DeleteProject and
// changeFeatures refuse then), as LXD counts it as not empty.
func dropDefaultProfile(ctx context.Context, tx *db.Tx, proj string) error {
	if proj == project.Default {
		return nil
	}

	usage, err := tx.GetProjectUsage(ctx, proj)
	if err != nil {
		return err
	}

	if usage.Instances > 0 {
		return nil // DeleteProject refuses, naming them
	}

	ps, err := tx.GetProjectProfiles(ctx, proj)
	if err != nil {
		return err
	}

	if len(ps) != 1 || project.ProfileName(ps[0].Name) != "default" {
		return nil
	}

	return tx.DeleteProjectProfiles(ctx, proj)
}

// changeFeatures refuses a feature change on a project that is not empty (instances,
// images of its own, or profiles of its own other than default), as LXD does, and gives
// or takes the project's own default profile when features.profiles changes.
func changeFeatures(ctx context.Context, tx *db.Tx, proj string, cur, next map[string]string) error {
	changed := []string{}
	for k := range features {
		if validate.IsTrue(cur[k]) != validate.IsTrue(next[k]) {
			changed = append(changed, k)
		}
	}

	if len(changed) == 0 {
		return nil
	}

	sort.Strings(changed)
	usage, err := tx.GetProjectUsage(ctx, proj)
	if err != nil {
		return err
	}

	own, err := tx.GetProjectProfiles(ctx, proj)
	if err != nil {
		return err
	}

	others := 0
	for _, p := range own {
		if project.ProfileName(p.Name) != "default" {
			others++
		}
	}

	if usage.Instances > 0 || usage.Images > 0 || others > 0 {
		return api.StatusErrorf(http.StatusBadRequest,
			"features can only be changed on empty projects: %q has %d instances, %d images and %d profiles besides default (changing %v)",
			proj, usage.Instances, usage.Images, others, changed)
	}

	on := validate.IsTrue(next[featureProfiles])
	if on == validate.IsTrue(cur[featureProfiles]) {
		return nil
	}

	if on {
		return createDefaultProfile(ctx, tx, proj)
	}

	return dropDefaultProfile(ctx, tx, proj)
}
