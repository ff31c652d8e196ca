package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/berth-dev/berth/lxd/backup"
	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
)

// TestBackupRename: POST renames a backup (tarball and record); a bad or taken name, a
// malformed body or a missing backup are refused and change nothing.
func TestBackupRename(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ev := events.NewServer(log)
	d := &Daemon{log: log, events: ev, ops: operations.NewRegistry(ev, log), backups: backup.New(backup.Config{Dir: t.TempDir(), Log: log})}

	dir := filepath.Join(d.backups.Dir(), "c")
	err := os.MkdirAll(dir, 0o700)
	if err != nil {
		t.Fatal(err)
	}

	for _, b := range []string{"one", "two"} {
		data, _ := json.Marshal(api.InstanceBackup{Name: b, CreatedAt: time.Now().UTC()})
		err = os.WriteFile(filepath.Join(dir, b+".json"), data, 0o600)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, b+".tar.gz"), []byte("tarball "+b), 0o600)
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	post := func(backup, body string) int {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/1.0/instances/c/backups/"+backup, strings.NewReader(body))
		r = mux.SetURLVars(r, map[string]string{"name": "c", "backup": backup})
		w := httptest.NewRecorder()
		d.render(w, r, instanceBackupPost(d, r))
		if w.Code == http.StatusAccepted {
			for _, op := range d.ops.List() {
				if err := op.Wait(context.Background()); err != nil {
					t.Fatalf("rename operation: %v", err)
				}
			}
		}

		return w.Code
	}

	names := func() string {
		t.Helper()
		list, err := d.listBackups("c")
		if err != nil {
			t.Fatal(err)
		}

		var out []string
		for _, b := range list {
			data, err := os.ReadFile(d.backupFile("c", b.Name))
			if err != nil || string(data) != "tarball "+strings.TrimPrefix(b.Name, "renamed-") {
				t.Errorf("tarball of %q: %q %v", b.Name, data, err)
			}

			out = append(out, b.Name)
		}

		return strings.Join(out, " ")
	}

	if code := post("one", `{"name":"renamed-one"}`); code != http.StatusAccepted {
		t.Fatalf("rename: %d", code)
	}

	if got := names(); got != "renamed-one two" && got != "two renamed-one" {
		t.Fatalf("after rename: %q", got)
	}

	cases := []struct {
		backup, body string
		code         int
	}{
		{"two", `{"name":"renamed-one"}`, http.StatusConflict},
		{"two", `{"name":""}`, http.StatusBadRequest},
		{"two", `{"name":"a/b"}`, http.StatusBadRequest},
		{"two", `{"name":".hidden"}`, http.StatusBadRequest},
		{"two", `{"name":"` + strings.Repeat("x", 300) + `"}`, http.StatusBadRequest},
		{"two", `{"name":1}`, http.StatusBadRequest},
		{"two", `nope`, http.StatusBadRequest},
		{"none", `{"name":"x"}`, http.StatusNotFound},
		{"..", `{"name":"x"}`, http.StatusNotFound},
	}
	for _, tc := range cases {
		if code := post(tc.backup, tc.body); code != tc.code {
			t.Errorf("rename %s with %s: %d, want %d", tc.backup, tc.body, code, tc.code)
		}
	}

	if got := names(); got != "renamed-one two" && got != "two renamed-one" {
		t.Fatalf("refused renames changed the backups: %q", got)
	}

	// The service itself refuses a taken name, as a racing rename would meet it.
	err = d.backups.Rename("c", "two", "renamed-one")
	if !api.StatusErrorCheck(err, http.StatusConflict) {
		t.Fatalf("service rename onto a taken name: %v, want 409", err)
	}

	if got := names(); got != "renamed-one two" && got != "two renamed-one" {
		t.Fatalf("refused service rename changed the backups: %q", got)
	}
}
