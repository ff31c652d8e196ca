package fstree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// deepTree makes levels nested directories "d" under root, fd-relative (the path is far
// longer than PATH_MAX), with a file at the bottom.
func deepTree(t *testing.T, root string, levels int) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}

	for i := 0; i < levels; i++ {
		err := unix.Mkdirat(fd, "d", 0o755)
		if err != nil {
			t.Fatal(err)
		}

		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}

		_ = unix.Close(fd)
		fd = next
	}

	f, err := unix.Openat(fd, "bottom", unix.O_CREAT|unix.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}

	_ = unix.Close(f)
	_ = unix.Close(fd)
}

func TestWalkDeepAndLimit(t *testing.T) {
	root := t.TempDir()
	deepTree(t, root, 5000)
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(t, os.Symlink("/etc", filepath.Join(root, "etc")))

	var dirs, files int
	var bottom string
	v := Visitor{
		Dir: func(e *Entry, fd int) error { dirs++; return nil },
		File: func(e *Entry) error {
			files++
			if e.Name == "bottom" {
				bottom = e.Path()
			}

			// Only regular files can be opened.
			if fd, err := e.Open(); err == nil {
				_ = unix.Close(fd)
				if e.Type() != unix.S_IFREG {
					t.Errorf("%s (type %o) was opened", e.Path(), e.Type())
				}
			}

			return nil
		},
	}

	must(t, Walk(context.Background(), root, DefaultLimits, v))
	if dirs != 5001 || files != 3 || bottom != strings.Repeat("d/", 5000)+"bottom" {
		t.Fatalf("walked %d dirs, %d files, bottom %q...", dirs, files, bottom[:min(len(bottom), 20)])
	}

	err := Walk(context.Background(), root, Limits{MaxDepth: 100, MaxLinks: 10}, v)
	var le *LimitError
	if !errors.As(err, &le) || le.What != "depth" || !strings.Contains(err.Error(), "limit of 100") {
		t.Fatalf("walk beyond the depth limit: %v", err)
	}
}

func TestWalkCancelled(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 1000; i++ {
		must(t, os.WriteFile(filepath.Join(root, "f"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+itoa(i)), nil, 0o644))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Walk(ctx, root, DefaultLimits, Visitor{Dir: func(*Entry, int) error { return nil }, File: func(*Entry) error { return nil }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("walk with a cancelled context: %v", err)
	}
}

func TestLinksLimit(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		must(t, os.WriteFile(filepath.Join(root, n), nil, 0o644))
		must(t, os.Link(filepath.Join(root, n), filepath.Join(root, n+"2")))
	}

	links := NewLinks(Limits{MaxLinks: 2})
	var firsts []string
	err := Walk(context.Background(), root, DefaultLimits, Visitor{
		Dir: func(*Entry, int) error { return nil },
		File: func(e *Entry) error {
			first, err := links.First(e)
			if first != "" {
				firsts = append(firsts, e.Name+"->"+first)
			}

			return err
		},
	})

	var le *LimitError
	if !errors.As(err, &le) || le.What != "hard-linked files" {
		t.Fatalf("walk beyond the link limit: %v", err)
	}

	if strings.Join(firsts, ",") != "a2->a,b2->b" {
		t.Fatalf("links %v", firsts)
	}
}

func itoa(i int) string {
	return string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
