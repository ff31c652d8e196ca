package imagestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeFetcher answers every fetch with body, counting the fetches.
type fakeFetcher struct {
	body  []byte
	ctype string
	err   error
	n     int
}

func (f *fakeFetcher) FetchImage(context.Context, string) (io.ReadCloser, string, error) {
	f.n++
	if f.err != nil {
		return nil, "", f.err
	}

	return io.NopCloser(bytes.NewReader(f.body)), f.ctype, nil
}

func fetchStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "images"), nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	return s
}

func sum(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}

	return hex.EncodeToString(h.Sum(nil))
}

// leftovers are the store's files but those of fp.
func leftovers(t *testing.T, s *Store, fp string) []string {
	t.Helper()
	entries, _ := os.ReadDir(s.dir)
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), fp) {
			out = append(out, e.Name())
		}
	}

	return out
}

// TestEnsureFileFetches: a missing image file is fetched once and kept; one that is
// here is not fetched; without a fetcher nothing happens.
func TestEnsureFileFetches(t *testing.T) {
	s := fetchStore(t)
	data := []byte("an image tarball")
	fp := sum(data)
	ctx := context.Background()
	if err := s.EnsureFile(ctx, fp); err != nil || s.HasFile(fp) {
		t.Fatalf("without a fetcher: %v, has file %v", err, s.HasFile(fp))
	}

	f := &fakeFetcher{body: data, ctype: "application/octet-stream"}
	s.SetFetcher(f)
	for range 2 {
		if err := s.EnsureFile(ctx, fp); err != nil {
			t.Fatal(err)
		}
	}

	got, err := os.ReadFile(s.TarballPath(fp))
	if err != nil || !bytes.Equal(got, data) || f.n != 1 || s.IsSplit(fp) {
		t.Fatalf("kept %q (%v) after %d fetches, split %v", got, err, f.n, s.IsSplit(fp))
	}

	if l := leftovers(t, s, fp); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestEnsureFileRefusesWrongContent: what another member sends is kept only when its
// SHA-256 is the fingerprint asked for; nothing of a refused fetch stays.
func TestEnsureFileRefusesWrongContent(t *testing.T) {
	s := fetchStore(t)
	fp := sum([]byte("the real image"))
	s.SetFetcher(&fakeFetcher{body: []byte("something else"), ctype: "application/octet-stream"})
	err := s.EnsureFile(context.Background(), fp)
	if err == nil || !strings.Contains(err.Error(), "has fingerprint "+sum([]byte("something else"))) {
		t.Fatalf("wrong content: %v", err)
	}

	if s.HasFile(fp) {
		t.Error("the wrong content was kept")
	}

	if l := leftovers(t, s, "none"); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}

	s.SetFetcher(&fakeFetcher{err: errors.New("no member has the image file")})
	err = s.EnsureFile(context.Background(), fp)
	if err == nil || !strings.Contains(err.Error(), "no member has the image file") {
		t.Fatalf("nowhere to fetch from: %v", err)
	}
}

// TestEnsureFileSplit: a split image's export (multipart: metadata, then rootfs) is
// kept split, checked against LXD's fingerprint of both files.
func TestEnsureFileSplit(t *testing.T) {
	s := fetchStore(t)
	meta, rootfs := []byte("metadata tarball"), bytes.Repeat([]byte("squashfs"), 1000)
	fp := sum(meta, rootfs)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct {
		field string
		data  []byte
	}{{"metadata", meta}, {"rootfs", rootfs}} {
		w, err := mw.CreateFormFile(p.field, p.field)
		if err != nil {
			t.Fatal(err)
		}

		_, _ = w.Write(p.data)
	}

	_ = mw.Close()
	s.SetFetcher(&fakeFetcher{body: body.Bytes(), ctype: mw.FormDataContentType()})
	err := s.EnsureFile(context.Background(), fp)
	if err != nil {
		t.Fatal(err)
	}

	gotMeta, _ := os.ReadFile(s.TarballPath(fp))
	gotRootfs, _ := os.ReadFile(s.RootfsPath(fp))
	if !bytes.Equal(gotMeta, meta) || !bytes.Equal(gotRootfs, rootfs) || !s.IsSplit(fp) {
		t.Fatalf("split image kept as %d + %d bytes, split %v", len(gotMeta), len(gotRootfs), s.IsSplit(fp))
	}
}

// blockingFetcher holds the fetch of fp blocked until release is closed.
type blockingFetcher struct {
	blocked string
	started chan struct{}
	release chan struct{}
	body    map[string][]byte
}

func (f *blockingFetcher) FetchImage(ctx context.Context, fp string) (io.ReadCloser, string, error) {
	if fp == f.blocked {
		close(f.started)
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}

	return io.NopCloser(bytes.NewReader(f.body[fp])), "application/octet-stream", nil
}

// TestEnsureFileSlowFetchBlocksOnlyItself: a hung fetch of one image neither delays
// another image's fetch nor keeps a waiter for the same image past its context.
func TestEnsureFileSlowFetchBlocksOnlyItself(t *testing.T) {
	s := fetchStore(t)
	slow, fast := []byte("slow image"), []byte("fast image")
	f := &blockingFetcher{blocked: sum(slow), started: make(chan struct{}), release: make(chan struct{}),
		body: map[string][]byte{sum(slow): slow, sum(fast): fast}}
	s.SetFetcher(f)
	slowDone := make(chan error, 1)
	go func() { slowDone <- s.EnsureFile(context.Background(), sum(slow)) }()
	<-f.started

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.EnsureFile(ctx, sum(fast))
	if err != nil || !s.HasFile(sum(fast)) {
		t.Fatalf("another image's fetch behind a hung one: %v", err)
	}

	wctx, wcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer wcancel()
	err = s.EnsureFile(wctx, sum(slow))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter on the hung fetch: %v", err)
	}

	close(f.release)
	if err := <-slowDone; err != nil || !s.HasFile(sum(slow)) {
		t.Fatalf("the slow fetch: %v", err)
	}
}
