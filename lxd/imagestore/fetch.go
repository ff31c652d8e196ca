package imagestore

import (
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"strings"
)

// Fetcher brings the export of an image from elsewhere: in a cluster, image records are
// shared while each member keeps the files it has, so a member launching an image it
// never received fetches it from one that did. body is the export as
// GET /1.0/images/{fp}/export gives it (a tarball, or a multipart body of a split
// image's two files); contentType tells which.
type Fetcher interface {
	FetchImage(ctx context.Context, fp string) (body io.ReadCloser, contentType string, err error)
}

// maxFetched caps the size of a fetched image.
const maxFetched = 64 << 30

// SetFetcher sets where missing image files come from (nil: nowhere, a missing file is
// an error where it is needed). Call it before serving.
func (s *Store) SetFetcher(f Fetcher) { s.fetcher = f }

// HasFile reports whether the store has the file(s) of image fp.
func (s *Store) HasFile(fp string) bool {
	_, err := os.Stat(s.TarballPath(fp))
	return err == nil
}

// EnsureFile makes sure the store has the file(s) of image fp, fetching them when they
// are missing and a fetcher is set. What is fetched is kept only when its SHA-256 is
// fp: another member's answer is checked like any upload.
func (s *Store) EnsureFile(ctx context.Context, fp string) error {
	if s.fetcher == nil || s.HasFile(fp) {
		return nil
	}

	// One fetch per image at a time: two launches of the same new image fetch it once,
	// while other images' fetches go on (issue 16 review: one slow export held a
	// store-wide lock every other fetch waited on, without regard to their contexts).
	done, err := s.lockFetch(ctx, fp)
	if err != nil {
		return err
	}

	defer done()
	if s.HasFile(fp) {
		return nil
	}

	up, err := s.fetch(ctx, fp)
	if err != nil {
		return err
	}

	defer up.Remove()
	if up.Fingerprint != fp {
		return fmt.Errorf("fetched image %s has fingerprint %s: refused", fp, up.Fingerprint)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.HasFile(fp) {
		return nil
	}

	if up.RootfsPath != "" {
		err = os.Rename(up.RootfsPath, s.RootfsPath(fp))
		if err != nil {
			return err
		}
	}

	err = os.Rename(up.Path, s.TarballPath(fp))
	if err != nil {
		_ = os.Remove(s.RootfsPath(fp))
		return err
	}

	s.log.Info("fetched image file from another member", "fingerprint", fp[:12], "size", up.Size)
	return nil
}

// lockFetch takes fp's fetch slot, waiting for a fetch of fp under way until it ends
// or ctx does. done releases the slot.
func (s *Store) lockFetch(ctx context.Context, fp string) (done func(), err error) {
	for {
		s.fetchMu.Lock()
		busy, ok := s.fetching[fp]
		if !ok {
			if s.fetching == nil {
				s.fetching = map[string]chan struct{}{}
			}

			mine := make(chan struct{})
			s.fetching[fp] = mine
			s.fetchMu.Unlock()
			return func() {
				s.fetchMu.Lock()
				delete(s.fetching, fp)
				s.fetchMu.Unlock()
				close(mine)
			}, nil
		}

		s.fetchMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the fetch of image %s: %w", fp, ctx.Err())
		}
	}
}

// fetch spools the export of fp from the fetcher.
func (s *Store) fetch(ctx context.Context, fp string) (*Upload, error) {
	body, ctype, err := s.fetcher.FetchImage(ctx, fp)
	if err != nil {
		return nil, err
	}

	defer func() { _ = body.Close() }()
	limited := io.LimitReader(body, maxFetched)
	mt, params, _ := mime.ParseMediaType(ctype)
	if !strings.HasPrefix(mt, "multipart/") {
		return s.Spool(limited)
	}

	mr := multipart.NewReader(limited, params["boundary"])
	meta, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("reading fetched split image: %w", err)
	}

	return s.SpoolSplit(meta, func() (io.Reader, error) {
		rootfs, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("reading fetched split image's rootfs: %w", err)
		}

		return rootfs, nil
	})
}
