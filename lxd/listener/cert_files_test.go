package listener

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteCertFilesCrashLeavesAPair: whatever point a replacement of the pair stopped
// at, the next load gives the old pair or the new one, never a mix.
func TestWriteCertFilesCrashLeavesAPair(t *testing.T) {
	oldCert, oldKey := []byte("old cert"), []byte("old key")
	newCert, newKey := []byte("new cert"), []byte("new key")
	for _, tc := range []struct {
		name string
		// files present (beside the old pair) when the crash came, and what's renamed
		keyNext, certNext, keyRenamed bool
		wantNew                       bool
	}{
		{name: "before anything"},
		{name: "key.next written", keyNext: true},
		{name: "both written", keyNext: true, certNext: true, wantNew: true},
		{name: "key renamed", certNext: true, keyRenamed: true, wantNew: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name string, data []byte) {
				err := os.WriteFile(filepath.Join(dir, name), data, 0o600)
				if err != nil {
					t.Fatal(err)
				}
			}

			write("c.crt", oldCert)
			write("c.key", oldKey)
			if tc.keyNext {
				write("c.key.next", newKey)
			}

			if tc.certNext {
				write("c.crt.next", newCert)
			}

			if tc.keyRenamed {
				write("c.key", newKey)
			}

			err := finishCertFiles(dir, "c.crt", "c.key")
			if err != nil {
				t.Fatal(err)
			}

			cert, key, err := ReadCertFiles(dir, "c.crt", "c.key")
			if err != nil {
				t.Fatal(err)
			}

			wantCert, wantKey := oldCert, oldKey
			if tc.wantNew {
				wantCert, wantKey = newCert, newKey
			}

			if !bytes.Equal(cert, wantCert) || !bytes.Equal(key, wantKey) {
				t.Errorf("after the crash: cert %q key %q, want %q %q", cert, key, wantCert, wantKey)
			}

			left, _ := filepath.Glob(filepath.Join(dir, "*.next"))
			if len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}

	dir := t.TempDir()
	err := WriteCertFiles(dir, "c.crt", "c.key", newCert, newKey)
	if err != nil {
		t.Fatal(err)
	}

	cert, key, err := ReadCertFiles(dir, "c.crt", "c.key")
	if err != nil || !bytes.Equal(cert, newCert) || !bytes.Equal(key, newKey) {
		t.Errorf("WriteCertFiles then read: %q %q %v", cert, key, err)
	}
}
