package instance

import (
	"context"
	"errors"

	"github.com/berth-dev/berth/shared/validate"
)

// Autostart starts every stopped instance whose expanded config has boot.autostart set,
// in name order; run it once Reconcile has found what is already running. Instances that
// fail to start are reported together, the others still start.
func (ru *Runner) Autostart(ctx context.Context) error {
	list, err := ru.view.List(ctx, false)
	if err != nil {
		return err
	}

	var errs []error
	for _, inst := range list {
		if !validate.IsTrue(inst.ExpandedConfig["boot.autostart"]) || ru.host.monitor(inst.Name) != nil {
			continue
		}

		ru.log.Info("autostarting instance", "instance", inst.Name)
		err := ru.Start(ctx, inst.Name)
		if err != nil && ru.host.monitor(inst.Name) == nil {
			errs = append(errs, err)
		}
	}

	return errors.Join(errs...)
}
