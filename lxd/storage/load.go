package storage

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// driver is what each backend implements beyond Driver.
type driver interface {
	Driver

	// load checks that the backend can work on this host and pool.
	load() error
}

// drivers maps driver names to constructors.
var drivers = map[string]func(p *pool) driver{
	"dir":     newDir,
	"overlay": newOverlay,
}

// Drivers lists the driver names, sorted.
func Drivers() []string {
	names := make([]string, 0, len(drivers))
	for name := range drivers {
		names = append(names, name)
	}

	slices.Sort(names)

	return names
}

// Load opens the pool at poolDir with the named driver, creating its layout
// (images/, containers/) when missing and removing what an interrupted operation left.
func Load(driverName, poolDir string, log *slog.Logger) (Driver, error) {
	newDriver, ok := drivers[driverName]
	if !ok {
		return nil, api.NewStatusError(http.StatusBadRequest, fmt.Errorf("loading pool %q: %w %q (have %s)", poolDir, ErrUnknownDriver, driverName, strings.Join(Drivers(), ", ")))
	}

	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	p, err := openPool(poolDir, log.With("pool", poolDir, "driver", driverName))
	if err != nil {
		return nil, err
	}

	p.driver = driverName
	d := newDriver(p)

	err = d.load()
	if err != nil {
		return nil, fmt.Errorf("loading %s pool %q: %w", driverName, poolDir, err)
	}

	err = d.RootQuota("")
	if err != nil {
		p.log.Info("root disk sizes will be refused", "reason", err)
	}

	return d, nil
}

// DefaultDriver names the best driver for a pool at poolDir: "overlay" when this host can
// mount overlayfs over an idmapped lower layer there (ProbeOverlay), else "dir". It probes
// each time it is called (a few milliseconds); call it once when creating a pool and record
// the answer.
func DefaultDriver(poolDir string) string {
	err := ProbeOverlay(poolDir)
	if err != nil {
		return "dir"
	}

	return "overlay"
}
