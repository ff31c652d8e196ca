package instance

import (
	"context"
	"errors"

	"github.com/berth-dev/berth/shared/validate"
)

// Autostart starts every stopped instance whose expanded config has boot.autostart set,
// in name order; run it once Reconcile has found what is already running. Instances that
// fail to start are reported together, the others still start.
func (m *Manager) Autostart(ctx context.Context) error {
	list, err := m.List(ctx, false)
	if err != nil {
		return err
	}

	var errs []error
	for _, inst := range list {
		if !validate.IsTrue(inst.ExpandedConfig["boot.autostart"]) || m.monitor(inst.Name) != nil {
			continue
		}

		m.log.Info("autostarting instance", "instance", inst.Name)
		err := m.Start(ctx, inst.Name)
		if err != nil && m.monitor(inst.Name) == nil {
			errs = append(errs, err)
		}
	}

	return errors.Join(errs...)
}
