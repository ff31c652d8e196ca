package client

import (
	"bytes"
	"io"
	"mime/multipart"
)

// SplitBody is a split image (metadata tarball plus rootfs) as one multipart/form-data
// body, a "metadata" part then a "rootfs" part, the form LXD uploads and exports split
// images in. Its Size is exact, so the upload carries a Content-Length (no chunking) and
// the receiver can refuse an oversized body at once.
type SplitBody struct {
	io.Reader
	Size        int64
	ContentType string
}

// NewSplitBody frames meta (metaSize bytes, sent as file metaName) and rootfs
// (rootfsSize bytes, rootfsName) as a SplitBody. The readers are read once, in order.
func NewSplitBody(meta io.Reader, metaName string, metaSize int64, rootfs io.Reader, rootfsName string, rootfsSize int64) (*SplitBody, error) {
	// The multipart writer frames the parts: what it writes around them is kept, the
	// files themselves are streamed between.
	var frame bytes.Buffer
	mw := multipart.NewWriter(&frame)
	cut := func() *bytes.Reader {
		b := bytes.NewReader(append([]byte(nil), frame.Bytes()...))
		frame.Reset()
		return b
	}

	_, err := mw.CreateFormFile("metadata", metaName)
	if err != nil {
		return nil, err
	}

	head := cut()
	_, err = mw.CreateFormFile("rootfs", rootfsName)
	if err != nil {
		return nil, err
	}

	mid := cut()
	err = mw.Close()
	if err != nil {
		return nil, err
	}

	tail := cut()
	return &SplitBody{
		Reader:      io.MultiReader(head, io.LimitReader(meta, metaSize), mid, io.LimitReader(rootfs, rootfsSize), tail),
		Size:        head.Size() + metaSize + mid.Size() + rootfsSize + tail.Size(),
		ContentType: mw.FormDataContentType(),
	}, nil
}
