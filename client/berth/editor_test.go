package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestRunEditor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.yaml")

	err := os.WriteFile(path, []byte("a\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	// $VISUAL wins over $EDITOR; either may carry arguments.
	t.Setenv("VISUAL", `sed -i "s/a/visual/"`)
	t.Setenv("EDITOR", `sed -i "s/a/editor/"`)

	err = runEditor(context.Background(), path)
	if b, _ := os.ReadFile(path); err != nil || string(b) != "visual\n" {
		t.Fatalf("with VISUAL: %q, %v", b, err)
	}

	t.Setenv("VISUAL", "")
	_ = os.WriteFile(path, []byte("a\n"), 0o600)

	err = runEditor(context.Background(), path)
	if b, _ := os.ReadFile(path); err != nil || string(b) != "editor\n" {
		t.Fatalf("with EDITOR: %q, %v", b, err)
	}

	t.Setenv("EDITOR", "false")

	if runEditor(context.Background(), path) == nil {
		t.Error("a failing editor is not an error")
	}
}
