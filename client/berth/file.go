package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
)

func newFileCmd(a *app) *cobra.Command {
	return newGroup("file", "Manage files in instances",
		newFilePushCmd(a), newFilePullCmd(a), newFileEditCmd(a), newFileDeleteCmd(a))
}

// splitInstancePath splits lxc's NAME/PATH argument.
func splitInstancePath(arg string) (string, string, error) {
	name, p, ok := strings.Cut(arg, "/")
	if !ok || name == "" {
		return "", "", fmt.Errorf("invalid target %q: want [REMOTE:]NAME/PATH", arg)
	}

	return name, "/" + p, nil
}

// instancePath resolves lxc's [REMOTE:]NAME/PATH argument: the remote's
// client, the instance and the absolute path in it. A malformed argument is
// refused before anything is connected.
func (a *app) instancePath(arg string) (*client.Client, string, string, error) {
	remote, rest, err := a.parseRemote(arg)
	if err != nil {
		return nil, "", "", err
	}

	name, p, err := splitInstancePath(rest)
	if err != nil {
		return nil, "", "", fmt.Errorf("invalid target %q: want [REMOTE:]NAME/PATH", arg)
	}

	c, err := a.remoteClient(remote)
	if err != nil {
		return nil, "", "", err
	}

	return c, name, p, nil
}

type pushFlags struct {
	recursive, parents bool
	uid, gid           int
	mode               string
}

func newFilePushCmd(a *app) *cobra.Command {
	f := pushFlags{}
	cmd := &cobra.Command{
		Use:   "push SOURCE... [REMOTE:]NAME/PATH",
		Short: "Push files into instances",
		Args:  rangeArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.filePush(cmd.Context(), args[:len(args)-1], args[len(args)-1], f)
		},
	}

	cmd.Flags().BoolVarP(&f.recursive, "recursive", "r", false, "Recursively transfer files")
	cmd.Flags().BoolVarP(&f.parents, "create-dirs", "p", false, "Create any directories necessary")
	cmd.Flags().IntVar(&f.uid, "uid", -1, "Set the file's uid on push")
	cmd.Flags().IntVar(&f.gid, "gid", -1, "Set the file's gid on push")
	cmd.Flags().StringVar(&f.mode, "mode", "", "Set the file's perms on push (octal)")

	return cmd
}

func (a *app) filePush(ctx context.Context, sources []string, target string, f pushFlags) error {
	c, name, dst, err := a.instancePath(target)
	if err != nil {
		return err
	}

	mode := -1
	if f.mode != "" {
		m, err := strconv.ParseInt(f.mode, 8, 32)
		if err != nil {
			return fmt.Errorf("invalid mode %q", f.mode)
		}

		mode = int(m)
	}

	intoDir := strings.HasSuffix(target, "/") || len(sources) > 1 || f.recursive
	for _, src := range sources {
		p := dst
		if intoDir {
			p = path.Join(dst, filepath.Base(src))
		}

		if f.parents {
			err := mkdirParents(ctx, c, name, path.Dir(p))
			if err != nil {
				return err
			}
		}

		fi, err := os.Lstat(src)
		if err != nil {
			return err
		}

		if fi.IsDir() {
			if !f.recursive {
				return fmt.Errorf("can't push directory %q without --recursive", src)
			}

			err = pushTree(ctx, c, name, src, p)
		} else {
			err = pushOne(ctx, c, name, src, p, fi, f.uid, f.gid, mode)
		}

		if err != nil {
			return err
		}
	}

	return nil
}

// ownerOf returns a local file's uid, gid and mode (what lxc sends by default).
func ownerOf(fi fs.FileInfo) (int64, int64, int) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, -1, int(fi.Mode().Perm())
	}

	return int64(st.Uid), int64(st.Gid), int(st.Mode & 0o7777)
}

func pushOne(ctx context.Context, c *client.Client, name, src, dst string, fi fs.FileInfo, uid, gid, mode int) error {
	fuid, fgid, fmode := ownerOf(fi)
	args := client.InstanceFileArgs{UID: fuid, GID: fgid, Mode: fmode, Type: "file"}
	if uid >= 0 {
		args.UID = int64(uid)
	}

	if gid >= 0 {
		args.GID = int64(gid)
	}

	if mode >= 0 {
		args.Mode = mode
	}

	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}

		args.Type, args.Target, args.Mode = "symlink", target, -1
		return c.CreateInstanceFile(ctx, name, dst, args)
	}

	file, err := os.Open(src)
	if err != nil {
		return err
	}

	defer file.Close()
	args.Content = file
	return c.CreateInstanceFile(ctx, name, dst, args)
}

func pushTree(ctx context.Context, c *client.Client, name, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}

		fi, err := d.Info()
		if err != nil {
			return err
		}

		target := path.Join(dst, filepath.ToSlash(rel))
		if d.IsDir() {
			uid, gid, mode := ownerOf(fi)
			return c.CreateInstanceFile(ctx, name, target, client.InstanceFileArgs{Type: "directory", UID: uid, GID: gid, Mode: mode})
		}

		if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			return nil // devices, sockets and fifos are not pushed
		}

		return pushOne(ctx, c, name, p, target, fi, -1, -1, -1)
	})
}

// mkdirParents creates the missing directories of dir, probing each with GET like lxc.
func mkdirParents(ctx context.Context, c *client.Client, name, dir string) error {
	var missing []string
	for d := path.Clean(dir); d != "/" && d != "."; d = path.Dir(d) {
		_, _, err := c.GetInstanceFile(ctx, name, d)
		if err == nil {
			break
		}

		missing = append(missing, d)
	}

	for i := len(missing) - 1; i >= 0; i-- {
		err := c.CreateInstanceFile(ctx, name, missing[i], client.InstanceFileArgs{Type: "directory", UID: int64(os.Getuid()), GID: int64(os.Getgid()), Mode: -1})
		if err != nil {
			return err
		}
	}

	return nil
}

func newFilePullCmd(a *app) *cobra.Command {
	var recursive, parents bool
	cmd := &cobra.Command{
		Use:   "pull [REMOTE:]NAME/PATH... TARGET",
		Short: "Pull files from instances (TARGET - writes to standard output)",
		Args:  rangeArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.filePull(cmd.Context(), args[:len(args)-1], args[len(args)-1], recursive, parents)
		},
	}

	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "Recursively transfer files")
	cmd.Flags().BoolVarP(&parents, "create-dirs", "p", false, "Create any directories necessary")

	return cmd
}

func (a *app) filePull(ctx context.Context, sources []string, target string, recursive, parents bool) error {
	intoDir := len(sources) > 1 || strings.HasSuffix(target, "/")
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		intoDir = true
	}

	for _, src := range sources {
		c, name, p, err := a.instancePath(src)
		if err != nil {
			return err
		}

		if target == "-" {
			err = a.pullToStdout(ctx, c, name, p, 0)
			if err != nil {
				return err
			}

			continue
		}

		dst := target
		if intoDir {
			dst = filepath.Join(target, path.Base(p))
		}

		if parents {
			err := os.MkdirAll(filepath.Dir(dst), 0o755)
			if err != nil {
				return err
			}
		}

		err = pullOne(ctx, c, name, p, dst, recursive)
		if err != nil {
			return err
		}
	}

	return nil
}

// pullToStdout writes a file's content to standard output, following symlinks.
func (a *app) pullToStdout(ctx context.Context, c *client.Client, name, p string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("too many levels of symbolic links at %q", p)
	}

	body, f, err := c.GetInstanceFile(ctx, name, p)
	if err != nil {
		return err
	}

	switch f.Type {
	case "directory":
		return fmt.Errorf("can't pull a directory without --recursive")
	case "symlink":
		return a.pullToStdout(ctx, c, name, f.Target, depth+1)
	}

	defer body.Close()
	_, err = io.Copy(a.out, body)
	return err
}

func newFileDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete [REMOTE:]NAME/PATH...",
		Aliases: []string{"rm"},
		Short:   "Delete files in instances",
		Args:    rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, arg := range args {
				c, name, p, err := a.instancePath(arg)
				if err != nil {
					return err
				}

				err = c.DeleteInstanceFile(cmd.Context(), name, p)
				if err != nil {
					return err
				}
			}

			return nil
		},
	}
}

func newFileEditCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "edit [REMOTE:]NAME/PATH",
		Short: "Edit a file in an instance (standard input replaces it when not a terminal)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.fileEdit(cmd.Context(), args[0])
		},
	}
}

func (a *app) fileEdit(ctx context.Context, arg string) error {
	c, name, p, err := a.instancePath(arg)
	if err != nil {
		return err
	}

	args := client.InstanceFileArgs{UID: -1, GID: -1, Mode: -1, Type: "file"}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		args.Content = os.Stdin
		return c.CreateInstanceFile(ctx, name, p, args)
	}

	tmp, err := os.CreateTemp("", "berth-edit-*"+path.Ext(p))
	if err != nil {
		return err
	}

	defer os.Remove(tmp.Name())
	body, _, err := c.GetInstanceFile(ctx, name, p)
	if err != nil {
		tmp.Close()
		return err
	}

	if body != nil {
		_, err = io.Copy(tmp, body)
		body.Close()
	}

	tmp.Close()
	if err != nil {
		return err
	}

	err = runEditor(ctx, tmp.Name())
	if err != nil {
		return err
	}

	data, err := os.ReadFile(tmp.Name())
	if err != nil {
		return err
	}

	args.Content = bytes.NewReader(data)
	return c.CreateInstanceFile(ctx, name, p, args)
}
