// Package warnings records the host problems berthd notices (LXD's warnings): a kernel
// limit it could not raise, a missing kernel feature, lxcfs missing, a network that did
// not start. A problem is one row per type and entity, counted each time it is seen
// again; an administrator acknowledges or deletes it; a check that finds the problem
// gone marks it resolved.
package warnings

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// Statuses, as LXD names them.
const (
	StatusNew          = "new"
	StatusAcknowledged = "acknowledged"
	StatusResolved     = "resolved"
)

// Type is a kind of problem: its name (what `lxc warning list` shows) and severity.
type Type struct {
	Name     string
	Severity string // low, moderate or high
}

// The problems berthd records.
var (
	HostLimitLow     = Type{Name: "Host limit below production", Severity: "moderate"}
	NofileLimitLow   = Type{Name: "Open file limit below production", Severity: "moderate"}
	MissingFeature   = Type{Name: "Missing kernel feature", Severity: "low"}
	LXCFSUnavailable = Type{Name: "lxcfs unavailable", Severity: "low"}
	NetworkFailed    = Type{Name: "Network failed to start", Severity: "high"}
)

// Limits on what is stored: a runaway source of distinct entities cannot fill the
// database, and a message is one line of bounded length.
const (
	maxWarnings = 1000
	maxMessage  = 1024
)

// Emit sends a lifecycle event ("warning-created", its URL).
type Emit func(action, url string, ctx map[string]any)

// Service keeps the warnings in the database.
type Service struct {
	db   *db.DB
	log  *slog.Logger
	emit Emit
	now  func() time.Time
}

// New returns the warnings service.
func New(d *db.DB, log *slog.Logger, emit Emit) *Service {
	if emit == nil {
		emit = func(string, string, map[string]any) {}
	}

	return &Service{db: d, log: log, emit: emit, now: time.Now}
}

// URL is a warning's API URL.
func URL(id string) string { return "/1.0/warnings/" + id }

// Record notes that typ was seen about entity (an API URL, a host object such as "sysctl
// fs.file-max", or ""): a new warning, or the existing one counted again with the new
// message. A resolved warning that comes back is new again; an acknowledged one stays
// acknowledged. Failures are logged: recording a problem must not be one.
func (s *Service) Record(ctx context.Context, typ Type, entity, message string) {
	message = oneLine(message)
	created := ""
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		now := s.now().UTC()
		w, err := tx.GetWarningByKey(ctx, typ.Name, entity)
		if err != nil {
			return err
		}

		if w != nil {
			w.Count++
			w.LastSeen, w.LastMessage, w.Severity = now, message, typ.Severity
			if w.Status == StatusResolved {
				w.Status = StatusNew
			}

			return tx.UpdateWarning(ctx, *w)
		}

		n, err := tx.CountWarnings(ctx)
		if err != nil {
			return err
		}

		if n >= maxWarnings {
			err = tx.DeleteOldestWarning(ctx)
			if err != nil {
				return err
			}
		}

		created = uuid.NewString()
		return tx.CreateWarning(ctx, db.Warning{
			UUID: created, Type: typ.Name, Entity: entity, Severity: typ.Severity, Status: StatusNew,
			Count: 1, FirstSeen: now, LastSeen: now, LastMessage: message,
		})
	})
	if err != nil {
		s.log.Warn("recording warning", "type", typ.Name, "entity", entity, "err", err)
		return
	}

	if created != "" {
		s.emit("warning-created", URL(created), nil)
	}
}

// Resolve marks the warning of typ about entity resolved, if there is one that is not.
func (s *Service) Resolve(ctx context.Context, typ Type, entity string) {
	id := ""
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		w, err := tx.GetWarningByKey(ctx, typ.Name, entity)
		if err != nil || w == nil || w.Status == StatusResolved {
			return err
		}

		id = w.UUID
		w.Status = StatusResolved
		return tx.UpdateWarning(ctx, *w)
	})
	if err != nil {
		s.log.Warn("resolving warning", "type", typ.Name, "entity", entity, "err", err)
		return
	}

	if id != "" {
		s.emit("warning-updated", URL(id), nil)
	}
}

// ResolveOthers marks resolved every warning of typ whose entity is not in seen: a check
// that went over all its entities found the others fine.
func (s *Service) ResolveOthers(ctx context.Context, typ Type, seen []string) {
	keep := map[string]bool{}
	for _, e := range seen {
		keep[e] = true
	}

	var list []db.Warning
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		list, err = tx.GetWarnings(ctx)
		return err
	})
	if err != nil {
		s.log.Warn("listing warnings", "err", err)
		return
	}

	for _, w := range list {
		if w.Type == typ.Name && !keep[w.Entity] && w.Status != StatusResolved {
			s.Resolve(ctx, typ, w.Entity)
		}
	}
}

// List returns every warning; status filters by status unless empty.
func (s *Service) List(ctx context.Context) ([]api.Warning, error) {
	var list []db.Warning
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		list, err = tx.GetWarnings(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := make([]api.Warning, 0, len(list))
	for i := range list {
		out = append(out, toAPI(&list[i]))
	}

	return out, nil
}

// Get returns one warning: 404 when there is none.
func (s *Service) Get(ctx context.Context, id string) (*api.Warning, error) {
	var w *db.Warning
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		w, err = tx.GetWarning(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := toAPI(w)
	return &out, nil
}

// SetStatus applies a PUT or PATCH: as LXD, only "new" and "acknowledged" may be set (a
// warning is resolved by the check that raised it).
func (s *Service) SetStatus(ctx context.Context, id, status string) error {
	if status != StatusNew && status != StatusAcknowledged {
		return api.StatusErrorf(http.StatusBadRequest, "status may only be set to %q or %q, not %q", StatusNew, StatusAcknowledged, status)
	}

	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		w, err := tx.GetWarning(ctx, id)
		if err != nil {
			return err
		}

		w.Status = status
		return tx.UpdateWarning(ctx, *w)
	})
	if err != nil {
		return err
	}

	s.emit("warning-updated", URL(id), nil)
	return nil
}

// Delete removes a warning: 404 when there is none.
func (s *Service) Delete(ctx context.Context, id string) error {
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteWarning(ctx, id)
	})
	if err != nil {
		return err
	}

	s.emit("warning-deleted", URL(id), nil)
	return nil
}

func toAPI(w *db.Warning) api.Warning {
	entityURL := ""
	if strings.HasPrefix(w.Entity, "/1.0/") {
		entityURL = w.Entity
	}

	return api.Warning{
		WarningPut:  api.WarningPut{Status: w.Status},
		UUID:        w.UUID,
		Location:    "none",
		Project:     "",
		Type:        w.Type,
		Count:       w.Count,
		FirstSeenAt: w.FirstSeen,
		LastSeenAt:  w.LastSeen,
		LastMessage: w.LastMessage,
		Severity:    w.Severity,
		EntityURL:   entityURL,
	}
}

// oneLine keeps a message to one bounded line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		s = s[:maxMessage]
	}

	return s
}
