package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/errdefs"
)

func newCpCommand(g *globals) *cobra.Command {
	var archiveMode, follow bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return usageErr("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return usageErr("must specify at least one container source")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if srcCtr != "" {
					return copyFrom(ctx, c, cmd, srcCtr, srcPath, dstPath)
				}
				return copyTo(ctx, c, cmd, srcPath, dstCtr, dstPath, archiveMode, follow)
			})
		},
	}
	cmd.Flags().BoolVarP(&archiveMode, "archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&follow, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; a local path that holds a colon must
// start with / or . to be read as local, as with docker.
func splitCpArg(a string) (ctr, p string) {
	if strings.HasPrefix(a, "/") || strings.HasPrefix(a, ".") {
		return "", a
	}
	if c, p, ok := strings.Cut(a, ":"); ok {
		return c, p
	}
	return "", a
}

func copyFrom(ctx context.Context, c *client.Client, cmd *cobra.Command, ctr, src, dst string) error {
	rc, st, err := c.CopyFromContainer(ctx, ctr, src)
	if err != nil {
		return err
	}
	defer rc.Close()
	if dst == "-" {
		_, err := io.Copy(cmd.OutOrStdout(), rc)
		return err
	}
	fi, err := os.Stat(dst)
	if err == nil && fi.IsDir() {
		_, err := archive.Apply(ctx, dst, rc, archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete})
		return err
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return localError{err}
	}
	if strings.HasSuffix(dst, "/") {
		return localError{fmt.Errorf("destination directory %q must exist", dst)}
	}
	// Extract beside dst and rename, so the copy gets dst's name and a
	// failed copy leaves nothing under it.
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".berth-cp-")
	if err != nil {
		return localError{err}
	}
	defer os.RemoveAll(tmp)
	if _, err := archive.Apply(ctx, tmp, rc, archive.ApplyOptions{Whiteouts: archive.WhiteoutsDelete}); err != nil {
		return err
	}
	name := st.Name
	if name == "" {
		name = path.Base(src)
	}
	if err := os.Rename(filepath.Join(tmp, name), dst); err != nil {
		return localError{fmt.Errorf("copy to %s: %w", dst, err)}
	}
	return nil
}

func copyTo(ctx context.Context, c *client.Client, cmd *cobra.Command, src, ctr, dst string, keepOwner, follow bool) error {
	if src == "-" {
		return c.CopyToContainer(ctx, ctr, dst, cmd.InOrStdin(), true, keepOwner)
	}
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	sfi, err := stat(src)
	if err != nil {
		return localError{err}
	}
	// Into an existing directory under the source's name; otherwise as
	// dst itself, extracted in its parent.
	dir, name := dst, filepath.Base(src)
	st, err := c.ContainerStatPath(ctx, ctr, dst)
	switch {
	case err == nil && st.Mode.IsDir():
	case err == nil:
		if sfi.IsDir() {
			return localError{fmt.Errorf("cannot copy a directory to a file: %s", dst)}
		}
		dir, name = path.Dir(dst), path.Base(dst)
	case errors.Is(err, errdefs.ErrNotFound):
		if strings.HasSuffix(dst, "/") && !sfi.IsDir() {
			return localError{fmt.Errorf("destination directory %q must exist", dst)}
		}
		dir, name = path.Dir(dst), path.Base(dst)
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, src, name, follow)) }()
	err = c.CopyToContainer(ctx, ctr, dir, pr, true, keepOwner)
	pr.Close()
	return err
}

// writeTar writes src (a file or a tree) as a tar whose top entry is name.
func writeTar(w io.Writer, src, name string, follow bool) error {
	tw := tar.NewWriter(w)
	root := src
	if follow {
		if r, err := filepath.EvalSymlinks(src); err == nil {
			root = r
		}
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return writeTarEntry(tw, p, path.Join(name, filepath.ToSlash(rel)), d, false)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// writeTarEntry writes one walked file p to tw as name (a directory gets
// a trailing slash, a symlink its target, a regular file its content);
// anonymous drops the owner.
func writeTarEntry(tw *tar.Writer, p, name string, d fs.DirEntry, anonymous bool) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name = name
	if fi.IsDir() {
		h.Name += "/"
	}
	if anonymous {
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
