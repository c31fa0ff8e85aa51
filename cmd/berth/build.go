package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
)

func newBuildCommand(g *globals) *cobra.Command {
	var (
		opts      client.BuildOptions
		file      string
		buildArgs []string
		labels    []string
		shmSize   string
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.BuildArgs = map[string]*string{}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					// docker: --build-arg NAME takes NAME from the environment.
					ev, set := os.LookupEnv(k)
					if !set {
						opts.BuildArgs[k] = nil
						continue
					}
					v = ev
				}
				opts.BuildArgs[k] = &v
			}
			if shmSize != "" {
				n, err := units.RAMInBytes(shmSize)
				if err != nil {
					return localError{fmt.Errorf("invalid --shm-size %q: %w", shmSize, err)}
				}
				opts.ShmSize = n
			}
			opts.Labels = map[string]string{}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				opts.Labels[k] = v
			}
			body, dockerfile, err := buildContext(cmd.InOrStdin(), args[0], file)
			if err != nil {
				return localError{err}
			}
			opts.Dockerfile = dockerfile
			out := cmd.OutOrStdout()
			if !opts.Quiet {
				opts.Progress = func(m jsonstream.Message) {
					if m.Stream != "" {
						io.WriteString(out, m.Stream)
					}
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.ImageBuild(ctx, body, opts)
				var se *client.StreamError
				if errors.As(err, &se) {
					// docker build exits with a failed RUN's code.
					code := se.Code
					if code <= 0 || code > 255 {
						code = 1
					}
					return exitError{code: code, err: errors.New(se.Message)}
				}
				if err != nil {
					return err
				}
				if opts.Quiet {
					fmt.Fprintln(out, res.ID)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "name of the Dockerfile (default: PATH/Dockerfile)")
	f.StringArrayVarP(&opts.Tags, "tag", "t", nil, `name and optionally a tag in the "name:tag" format`)
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set build-time variables")
	f.StringArrayVar(&labels, "label", nil, "set metadata for an image")
	f.BoolVar(&opts.NoCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVar(&opts.Pull, "pull", false, "always attempt to pull a newer version of the image")
	f.StringVar(&opts.Target, "target", "", "set the target build stage to build")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "suppress the build output and print image ID on success")
	f.StringVar(&opts.NetworkMode, "network", "", "set the networking mode for the RUN instructions during build (default: none)")
	f.StringVar(&opts.Platform, "platform", "", "set platform if server is multi-platform capable")
	f.StringArrayVar(&opts.ExtraHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip) for RUN")
	f.StringVar(&shmSize, "shm-size", "", "size of /dev/shm for RUN")
	return cmd
}

// buildContext makes the context tar for path ("-": stdin, a tar or a
// lone Dockerfile) and the Dockerfile's name in it. A Dockerfile outside
// the context travels inside it under a random name, as docker's CLI
// does. Files .dockerignore excludes are not sent (the daemon would drop
// them anyway).
func buildContext(stdin io.Reader, path, file string) (io.Reader, string, error) {
	if path == "-" {
		if file == "-" {
			return nil, "", errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		br := bufio.NewReaderSize(stdin, 1024)
		head, _ := br.Peek(512)
		if isTarOrCompressed(head) {
			return br, file, nil
		}
		df, err := io.ReadAll(br)
		if err != nil {
			return nil, "", err
		}
		return tarOf(map[string][]byte{"Dockerfile": df}), "Dockerfile", nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: %w", err)
	}
	if !fi.IsDir() {
		return nil, "", fmt.Errorf("unable to prepare context: path %q is not a directory", path)
	}
	extra := map[string][]byte{}
	name := ""
	switch {
	case file == "-":
		df, err := io.ReadAll(stdin)
		if err != nil {
			return nil, "", err
		}
		name = ".dockerfile." + strings.ToLower(rand.Text()[:12])
		extra[name] = df
	case file != "":
		abs, _ := filepath.Abs(file)
		ctxAbs, _ := filepath.Abs(path)
		if rel, err := filepath.Rel(ctxAbs, abs); err == nil && !strings.HasPrefix(rel, "..") {
			name = filepath.ToSlash(rel)
		} else {
			df, err := os.ReadFile(file)
			if err != nil {
				return nil, "", fmt.Errorf("unable to prepare context: %w", err)
			}
			name = ".dockerfile." + strings.ToLower(rand.Text()[:12])
			extra[name] = df
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContextTar(pw, path, name, extra)) }()
	return pr, name, nil
}

func isTarOrCompressed(head []byte) bool {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}), bytes.HasPrefix(head, []byte("BZh")),
		bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z'}), bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return true
	}
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

func tarOf(files map[string][]byte) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = writeFiles(tw, files)
	_ = tw.Close()
	return &buf
}

// writeFiles adds name → content entries, root-owned, mode 0644.
func writeFiles(tw *tar.Writer, files map[string][]byte) error {
	for name, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeContextTar writes dir as a tar owned by root (the daemon sees no
// local uids), skipping what .dockerignore excludes but never the
// Dockerfile or .dockerignore itself, then extra files.
func writeContextTar(w io.Writer, dir, dockerfile string, extra map[string][]byte) error {
	var pm *patternmatcher.PatternMatcher
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		pats, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return err
		}
		if pm, err = patternmatcher.New(pats); err != nil {
			return err
		}
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if pm != nil && rel != dockerfile && rel != ".dockerignore" {
			skip, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if skip {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		// A build context belongs to nobody: root-owned, as docker's.
		if err := writeTarEntry(tw, p, rel, d, true); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := writeFiles(tw, extra); err != nil {
		return err
	}
	return tw.Close()
}

// newBuilderCommand is berth builder: build and prune of the cache.
func newBuilderCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Manage builds"}
	var force bool
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove build cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				fmt.Fprint(cmd.OutOrStdout(), "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] ")
				var answer string
				fmt.Fscanln(cmd.InOrStdin(), &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				n, err := c.BuildPrune(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "Total reclaimed space:", humanSize(n))
				return nil
			})
		},
	}
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.AddCommand(newBuildCommand(g), prune)
	return cmd
}
