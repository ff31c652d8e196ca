package instance

import (
	"context"
	"errors"

	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// Autostart starts every stopped instance of this member whose expanded config has
// boot.autostart set, in name order; run it once Reconcile has found what is already running. Instances that
// fail to start are reported together, the others still start.
func (ru *Runner) Autostart(ctx context.Context) error {
	list, err := ru.view.ListLocal(ctx, false)
	if err != nil {
		return err
	}

	var errs []error
	for _, inst := range list {
		key := project.Key(inst.Project, inst.Name)
		if !validate.IsTrue(inst.ExpandedConfig["boot.autostart"]) || ru.host.monitor(key) != nil {
			continue
		}

		ru.log.Info("autostarting instance", "instance", key)
		err := ru.Start(ctx, key)
		if err != nil && ru.host.monitor(key) == nil {
			errs = append(errs, err)
		}
	}

	return errors.Join(errs...)
}
