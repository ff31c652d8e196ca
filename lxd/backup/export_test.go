package backup

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// TestIndexDirectories: like LXD's, a backup has backup/snapshots/ only when it carries
// snapshots (lxc export --instance-only, or an instance without any, leaves it out).
func TestIndexDirectories(t *testing.T) {
	for _, tc := range []struct {
		snaps []string
		want  []string
	}{
		{nil, []string{"backup/", "backup/container/", "backup/index.yaml"}},
		{[]string{"s0"}, []string{"backup/", "backup/container/", "backup/snapshots/", "backup/index.yaml"}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)

		err := writeIndex(tw, &Index{Name: "c1", Snapshots: tc.snaps})
		if err == nil {
			err = tw.Close()
		}

		if err != nil {
			t.Fatal(err)
		}

		var got []string
		tr := tar.NewReader(&buf)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}

			if err != nil {
				t.Fatal(err)
			}

			got = append(got, hdr.Name)
		}

		if !slices.Equal(got, tc.want) {
			t.Errorf("snapshots %v: members %q, want %q", tc.snaps, got, tc.want)
		}
	}
}
