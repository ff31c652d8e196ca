package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/lxd/snapshot"
	"github.com/berth-dev/berth/shared/tarsafe"
)

// maxIndexSize bounds backup/index.yaml.
const maxIndexSize = 4 << 20

// splitBackup reads a backup and writes one uncompressed image-layout tarball per tree into
// dir: trees[""] for the instance (rootfs/, metadata.yaml, templates/), trees[snap] for
// each snapshot listed in the index (rootfs/ only).
func splitBackup(file, dir string) (*Index, map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}

	defer f.Close()
	tr, closer, err := images.OpenTar(f)
	if err != nil {
		return nil, nil, err
	}

	defer closer.Close()
	index, err := readIndex(tr)
	if err != nil {
		return nil, nil, err
	}

	snaps := map[string]bool{}
	for _, s := range index.Snapshots {
		err := snapshot.ValidateName(s)
		if err != nil || snaps[s] {
			return nil, nil, fmt.Errorf("bad or repeated snapshot name %q in index", s)
		}

		snaps[s] = true
	}

	out := &treeSplitter{tarsafe.NewTrees(dir)}
	defer out.Close()

	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			return nil, nil, err
		}

		tree, rel, err := backupMember(hdr.Name, snaps)
		if err != nil {
			return nil, nil, err
		}

		if rel == "" {
			continue // the index again, a directory of the layout, or a foreign member
		}

		err = out.add(hdr, tree, rel, tr, snaps)
		if err != nil {
			return nil, nil, err
		}
	}

	paths, err := out.Finish()
	if err != nil {
		return nil, nil, err
	}

	return index, paths, nil
}

func readIndex(tr *tar.Reader) (*Index, error) {
	data, err := tarsafe.FirstFile(tr, indexName, maxIndexSize)
	if err != nil {
		return nil, err
	}

	index := &Index{}
	err = yaml.Unmarshal(data, index)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", indexName, err)
	}

	return index, nil
}

// backupMember maps a member name to its tree and its name inside that tree's image
// layout ("" to skip the member). Names tarsafe refuses ("..", NUL) are refused
// outright, with the same check the image unpacker makes.
func backupMember(name string, snaps map[string]bool) (string, string, error) {
	comps, err := tarsafe.Split(name)
	if err != nil {
		return "", "", err
	}

	if len(comps) < 3 || comps[0] != "backup" {
		return "", "", nil
	}

	switch {
	case comps[1] == "container":
		return "", strings.Join(comps[2:], "/"), nil
	case comps[1] == "snapshots" && len(comps) >= 4 && snaps[comps[2]] && comps[3] == "rootfs":
		return comps[2], strings.Join(comps[3:], "/"), nil
	}

	return "", "", nil
}

// treeSplitter writes members into per-tree tarballs.
type treeSplitter struct{ *tarsafe.Trees }

func (s *treeSplitter) add(hdr *tar.Header, tree, rel string, r io.Reader, snaps map[string]bool) error {
	out := *hdr
	out.Name = rel
	if hdr.Typeflag == tar.TypeDir {
		out.Name += "/"
	}

	if hdr.Typeflag == tar.TypeLink {
		linkTree, linkRel, err := backupMember(hdr.Linkname, snaps)
		if err != nil || linkRel == "" || linkTree != tree {
			return fmt.Errorf("hard link %q points outside its tree (%q)", hdr.Name, hdr.Linkname)
		}

		out.Linkname = linkRel
	}

	tw, err := s.Writer(tree)
	if err != nil {
		return err
	}

	err = tw.WriteHeader(&out)
	if err != nil {
		return fmt.Errorf("splitting %q: %w", hdr.Name, err)
	}

	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse {
		_, err = io.Copy(tw, r)
		if err != nil {
			return fmt.Errorf("splitting %q: %w", hdr.Name, err)
		}
	}

	return nil
}
