package warnings

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

func newService(t *testing.T) *Service {
	t.Helper()
	d, err := db.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.Close() })
	return New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

func only(t *testing.T, s *Service) api.Warning {
	t.Helper()
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	if len(list) != 1 {
		t.Fatalf("want one warning, got %+v", list)
	}

	return list[0]
}

// TestRecordDeduplicates: the same type and entity is one warning, counted, with the last
// message; a resolved one that comes back is new, an acknowledged one stays acknowledged.
func TestRecordDeduplicates(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Minute); return clock }

	s.Record(ctx, HostLimitLow, "sysctl fs.file-max", "first\nline")
	s.Record(ctx, HostLimitLow, "sysctl fs.file-max", "second")
	w := only(t, s)
	if w.Count != 2 || w.LastMessage != "second" || w.Status != StatusNew || !w.LastSeenAt.After(w.FirstSeenAt) {
		t.Fatalf("after two records: %+v", w)
	}

	if w.Type != HostLimitLow.Name || w.Severity != "moderate" || w.EntityURL != "" {
		t.Fatalf("fields: %+v", w)
	}

	s.Resolve(ctx, HostLimitLow, "sysctl fs.file-max")
	if w := only(t, s); w.Status != StatusResolved {
		t.Fatalf("after resolve: %s", w.Status)
	}

	s.Record(ctx, HostLimitLow, "sysctl fs.file-max", "back")
	if w := only(t, s); w.Status != StatusNew || w.Count != 3 {
		t.Fatalf("resolved warning seen again: %+v", w)
	}

	err := s.SetStatus(ctx, w.UUID, StatusAcknowledged)
	if err != nil {
		t.Fatal(err)
	}

	s.Record(ctx, HostLimitLow, "sysctl fs.file-max", "again")
	if w := only(t, s); w.Status != StatusAcknowledged {
		t.Fatalf("acknowledged warning seen again: %s", w.Status)
	}

	s.ResolveOthers(ctx, HostLimitLow, []string{"sysctl fs.file-max"})
	if w := only(t, s); w.Status != StatusAcknowledged {
		t.Fatalf("ResolveOthers resolved a seen entity: %s", w.Status)
	}

	s.ResolveOthers(ctx, HostLimitLow, nil)
	if w := only(t, s); w.Status != StatusResolved {
		t.Fatalf("ResolveOthers left an unseen entity: %s", w.Status)
	}

	s.Record(ctx, NetworkFailed, "/1.0/networks/br1", "x")
	list, _ := s.List(ctx)
	if len(list) != 2 || list[1].EntityURL != "/1.0/networks/br1" {
		t.Fatalf("second type: %+v", list)
	}
}

// TestSetStatusValidates: only new and acknowledged may be set; unknown uuids are 404;
// a refused change changes nothing.
func TestSetStatusValidates(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	s.Record(ctx, MissingFeature, "ipv6", "no IPv6")
	w := only(t, s)
	for _, bad := range []string{"resolved", "", "NEW", "bogus"} {
		err := s.SetStatus(ctx, w.UUID, bad)
		if !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("status %q: %v", bad, err)
		}
	}

	if got := only(t, s); got.Status != StatusNew {
		t.Fatalf("refused change changed the status to %s", got.Status)
	}

	err := s.SetStatus(ctx, "nope", StatusNew)
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Errorf("unknown uuid: %v", err)
	}

	err = s.Delete(ctx, w.UUID)
	if err != nil {
		t.Fatal(err)
	}

	err = s.Delete(ctx, w.UUID)
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// TestRecordCapped: distinct entities beyond the cap push out the oldest.
func TestRecordCapped(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	for i := range maxWarnings + 5 {
		s.Record(ctx, HostLimitLow, "sysctl k"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), "m")
	}

	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if len(list) != maxWarnings {
		t.Fatalf("%d warnings, want the cap %d", len(list), maxWarnings)
	}
}
