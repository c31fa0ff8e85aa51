package build

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/command"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

func nowUTC() time.Time { return time.Now().UTC() }

// dispatch runs one instruction of a stage.
func (r *run) dispatch(ctx context.Context, st *stage, n *parser.Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cmd := strings.ToLower(n.Value)
	if cmd != command.Copy && cmd != command.Add && cmd != command.From && cmd != command.Healthcheck && len(n.Flags) > 0 {
		if _, err := flags(n); err != nil {
			return err
		}
	}
	var err error
	switch cmd {
	case command.Run:
		err = r.runStep(ctx, st, n)
	case command.Copy, command.Add:
		err = r.copyStep(ctx, st, n, cmd == command.Add)
	case command.Workdir:
		err = r.workdir(ctx, st, n)
	case command.From:
		err = fmt.Errorf("FROM inside a stage: %w", errdefs.ErrInvalidArgument)
	default:
		err = r.metadata(ctx, st, n, cmd)
	}
	// Errors of a class, and a RUN's exit, already say what failed in
	// the words docker uses; the others get the instruction's name.
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return err
		}
		if errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrNotImplemented) {
			return err
		}
		return fmt.Errorf("%s: %w", strings.ToUpper(cmd), err)
	}
	return nil
}

// commandArgs is CMD/ENTRYPOINT/RUN's command: the exec (JSON) form as
// written, the shell form wrapped in the stage's shell.
func commandArgs(st *stage, n *parser.Node) []string {
	w := words(n)
	if n.Attributes["json"] {
		return w
	}
	if len(w) == 0 {
		return nil
	}
	return append(slices.Clone(st.shell()), strings.Join(w, " "))
}

// runArgs are the build arguments RUN sees: declared in the stage with a
// value and not shadowed by ENV, plus predefined ones given, sorted. The
// history line shows the declared ones, docker's "|N K=V ..." prefix.
func (r *run) runArgs(st *stage) (env, shown []string) {
	have := map[string]bool{}
	for _, kv := range st.img.Config.Config.Env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	for _, k := range st.args {
		if v := st.argVals[k]; v != nil && !have[k] {
			env = append(env, k+"="+*v)
			if !predefinedArgs[k] {
				shown = append(shown, k+"="+*v)
			}
		}
	}
	for k, v := range r.opts.BuildArgs {
		if predefinedArgs[k] && v != nil && !have[k] && !slices.Contains(st.args, k) {
			env = append(env, k+"="+*v)
		}
	}
	sort.Strings(env)
	sort.Strings(shown)
	return env, shown
}

func (r *run) runStep(ctx context.Context, st *stage, n *parser.Node) error {
	args := commandArgs(st, n)
	if len(args) == 0 {
		return fmt.Errorf("dockerfile line %d: RUN requires at least one argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
	}
	if st.img.ID == "" {
		return fmt.Errorf("RUN on an empty image (FROM scratch): there is nothing to run: %w", errdefs.ErrInvalidArgument)
	}
	argEnv, shown := r.runArgs(st)
	createdBy := strings.Join(args, " ")
	if len(shown) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(shown), strings.Join(shown, " "), createdBy)
	}
	net := r.opts.NetworkMode
	if net == "" || net == "default" {
		net = "none"
	}
	cfg := cloneConfig(st.img.Config)
	return r.commit(ctx, st, cfg, createdBy, "net="+net+"\n"+strings.Join(argEnv, "\n"), kindRun, func(cfg dockerspec.DockerOCIImage) (digest.Digest, error) {
		var ctr string
		id, err := r.bd.b.Run(ctx, RunOptions{
			Base: st.img.ID, Args: args,
			Env:  append(slices.Clone(st.img.Config.Config.Env), argEnv...),
			User: cfg.Config.User, WorkingDir: cfg.Config.WorkingDir,
			NetworkMode: net, Limits: r.opts.Limits, Output: r.out, Config: cfg,
			Started: func(c string) {
				ctr = c
				fmt.Fprintf(r.out, " ---> Running in %s\n", shortID(digest.Digest("sha256:"+c)))
			},
		})
		var ee *ExitError
		if errors.As(err, &ee) {
			return "", &ExitError{Code: ee.Code, Command: strings.Join(args, " ")}
		}
		if err != nil {
			return "", err
		}
		if ctr != "" {
			fmt.Fprintf(r.out, " ---> Removed intermediate container %s\n", shortID(digest.Digest("sha256:"+ctr)))
		}
		return id, nil
	})
}

// destPath makes a destination absolute against the working directory,
// keeping a trailing slash (it says "a directory").
func destPath(st *stage, d string) (string, bool) {
	dirLike := strings.HasSuffix(d, "/") || d == "." || strings.HasSuffix(d, "/.")
	if !path.IsAbs(d) {
		wd := st.img.Config.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		d = path.Join(wd, d)
	}
	return path.Clean(d), dirLike
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "git@")
}

func (r *run) copyStep(ctx context.Context, st *stage, n *parser.Node, add bool) error {
	name := "COPY"
	allowed := []string{"from", "chown", "chmod"}
	if add {
		name, allowed = "ADD", []string{"chown", "chmod"}
	}
	f, err := flags(n, allowed...)
	if err != nil {
		return err
	}
	ws, err := r.expandAll(st, words(n))
	if err != nil {
		return err
	}
	if len(ws) < 2 {
		return fmt.Errorf("dockerfile line %d: %s requires at least two arguments: %w", n.StartLine, name, errdefs.ErrInvalidArgument)
	}
	srcs, rawDest := ws[:len(ws)-1], ws[len(ws)-1]
	for _, s := range srcs {
		if isURL(s) {
			return fmt.Errorf("ADD %s: this daemon cannot download during a build (no network access for ADD); download it into the build context: %w", s, errdefs.ErrNotImplemented)
		}
	}
	var chmod *fs.FileMode
	if c := f["chmod"]; c != "" {
		m, err := strconv.ParseUint(c, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("invalid chmod parameter %q: %w", c, errdefs.ErrInvalidArgument)
		}
		fm := fs.FileMode(m)
		chmod = &fm
	}
	chown, err := r.expand(st, f["chown"])
	if err != nil {
		return err
	}
	dest, dirLike := destPath(st, rawDest)
	// The sources' content decides the key, not where they came from:
	// a rebuilt stage with the same files still hits the cache.
	doCopy := func(srcRoot string) error {
		root, err := os.OpenRoot(srcRoot)
		if err != nil {
			return err
		}
		defer root.Close()
		sources, tops, anyDir, err := collectSources(root, srcs, true)
		if err != nil {
			return fmt.Errorf("%s failed: %w", name, err)
		}
		if tops > 1 && !dirLike {
			return fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /: %w", name, errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
		}
		p := &copyPlan{root: root, destIsDir: dirLike || anyDir || tops > 1, dest: dest, chmod: chmod}
		if add {
			kept := sources[:0]
			for _, s := range sources {
				if s.top && isRegular(s.info) && isArchive(root, s.rel) {
					p.archives = append(p.archives, s.rel)
					p.destIsDir = true
					continue
				}
				kept = append(kept, s)
			}
			sources = kept
		}
		p.sources = sources
		sum, err := p.hash(owner{})
		if err != nil {
			return fmt.Errorf("%s failed: %w", name, err)
		}
		kind := "file"
		if anyDir || tops > 1 {
			kind = "dir"
		}
		createdBy := st.nop(fmt.Sprintf("%s %s:%s in %s ", name, kind, sum, dest))
		cfg := cloneConfig(st.img.Config)
		return r.commit(ctx, st, cfg, createdBy, "chown="+chown, kindMutate, func(cfg dockerspec.DockerOCIImage) (digest.Digest, error) {
			return r.bd.b.Mutate(ctx, MutateOptions{Base: st.img.ID, Config: cfg, Write: func(ctx context.Context, root string) error {
				return p.write(ctx, root, srcRoot, chown)
			}})
		})
	}
	from := f["from"]
	if from == "" {
		return doCopy(r.ctxRoot.Name())
	}
	if prev, ok := r.done[strings.ToLower(from)]; ok {
		return r.bd.b.View(ctx, prev.img.ID, func(root string) error { return doCopy(root) })
	}
	im, err := r.bd.b.Image(ctx, from)
	if err != nil {
		return fmt.Errorf("COPY --from=%s: %w", from, err)
	}
	return r.bd.b.View(ctx, im.ID, func(root string) error { return doCopy(root) })
}

// write carries out the copy in the image's root filesystem.
func (p *copyPlan) write(ctx context.Context, root, srcRoot, chown string) error {
	own, err := resolveOwner(root, chown)
	if err != nil {
		return err
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	dir := p.dest
	if !p.destIsDir {
		if isDirIn(rootfd, p.dest) {
			p.destIsDir = true
		} else {
			dir = path.Dir(p.dest)
		}
	}
	if len(p.sources) > 0 || len(p.archives) == 0 {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(p.writeTar(pw, own)) }()
		err = extractIn(ctx, root, dir, own, pr)
		pr.CloseWithError(errors.New("copy ended"))
		if err != nil {
			return err
		}
	}
	for _, a := range p.archives {
		if err := extractArchive(ctx, root, dir, p.root, a); err != nil {
			return fmt.Errorf("extract %s: %w", a, err)
		}
	}
	return nil
}

// openArchive opens name as a tar stream if it is one: plain, gzip,
// zstd or bzip2 (docker also takes xz, which berth does not read).
func openArchive(root *os.Root, name string) (io.Reader, func(), bool) {
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, false
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	closeAll := func() { f.Close() }
	if head, _ := br.Peek(3); string(head) == "BZh" {
		r = bzip2.NewReader(br)
	} else {
		dr, err := archive.Decompress(br)
		if err != nil {
			f.Close()
			return nil, nil, false
		}
		r = dr
		closeAll = func() { dr.Close(); f.Close() }
	}
	return r, closeAll, true
}

// isArchive reports whether the file name holds a tar archive that ADD
// extracts.
func isArchive(root *os.Root, name string) bool {
	r, closeAll, ok := openArchive(root, name)
	if !ok {
		return false
	}
	defer closeAll()
	_, err := tar.NewReader(r).Next()
	return err == nil
}

func extractArchive(ctx context.Context, root, dir string, src *os.Root, name string) error {
	r, closeAll, ok := openArchive(src, name)
	if !ok {
		return fmt.Errorf("not an archive: %w", errdefs.ErrInvalidArgument)
	}
	defer closeAll()
	return extractIn(ctx, root, dir, owner{}, r)
}

func (r *run) workdir(ctx context.Context, st *stage, n *parser.Node) error {
	w := words(n)
	if len(w) != 1 {
		return fmt.Errorf("dockerfile line %d: WORKDIR requires exactly one argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
	}
	p, err := r.expand(st, w[0])
	if err != nil {
		return err
	}
	p, _ = destPath(st, p)
	cfg := cloneConfig(st.img.Config)
	cfg.Config.WorkingDir = p
	return r.commit(ctx, st, cfg, st.nop("WORKDIR "+p), "", kindMutate, func(cfg dockerspec.DockerOCIImage) (digest.Digest, error) {
		return r.bd.b.Mutate(ctx, MutateOptions{Base: st.img.ID, Config: cfg, Write: func(ctx context.Context, root string) error {
			rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(rootfd)
			fd, err := mkdirAllIn(rootfd, p, owner{})
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}})
	})
}

// keyValues are ENV's and LABEL's pairs, expanded unless literal.
func (r *run) keyValues(st *stage, n *parser.Node) ([][2]string, error) {
	var out [][2]string
	for c := n.Next; c != nil && c.Next != nil; c = c.Next.Next.Next {
		k, v := c.Value, c.Next.Value
		if !n.Attributes["literal"] {
			var err error
			if k, err = r.expand(st, k); err != nil {
				return nil, err
			}
			if v, err = r.expand(st, v); err != nil {
				return nil, err
			}
		}
		out = append(out, [2]string{k, v})
		if c.Next.Next == nil {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dockerfile line %d: %s requires at least one argument: %w", n.StartLine, strings.ToUpper(n.Value), errdefs.ErrInvalidArgument)
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// metadata runs the instructions that only change the config.
func (r *run) metadata(ctx context.Context, st *stage, n *parser.Node, cmd string) error {
	cfg := cloneConfig(st.img.Config)
	c := &cfg.Config
	var msg string
	switch cmd {
	case command.Env:
		kvs, err := r.keyValues(st, n)
		if err != nil {
			return err
		}
		msg = "ENV"
		for _, kv := range kvs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
			msg += " " + kv[0] + "=" + kv[1]
		}
	case command.Label:
		kvs, err := r.keyValues(st, n)
		if err != nil {
			return err
		}
		msg = "LABEL"
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range kvs {
			c.Labels[kv[0]] = kv[1]
			msg += " " + kv[0] + "=" + kv[1]
		}
	case command.Maintainer:
		w, err := r.expandAll(st, words(n))
		if err != nil {
			return err
		}
		cfg.Author = strings.Join(w, " ")
		msg = "MAINTAINER " + cfg.Author
	case command.Arg:
		return r.arg(ctx, st, n, cfg)
	case command.Expose:
		w, err := r.expandAll(st, words(n))
		if err != nil {
			return err
		}
		ports, err := exposedPorts(w)
		if err != nil {
			return err
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			c.ExposedPorts[p] = struct{}{}
		}
		msg = "EXPOSE " + strings.Join(ports, " ")
	case command.Volume:
		w, err := r.expandAll(st, words(n))
		if err != nil {
			return err
		}
		if len(w) == 0 {
			return fmt.Errorf("dockerfile line %d: VOLUME requires at least one argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
		}
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range w {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string: %w", errdefs.ErrInvalidArgument)
			}
			c.Volumes[v] = struct{}{}
		}
		msg = fmt.Sprintf("VOLUME %v", w)
	case command.Cmd:
		c.Cmd = commandArgs(st, n)
		st.cmdSet = true
		msg = fmt.Sprintf("CMD %q", c.Cmd)
	case command.Entrypoint:
		c.Entrypoint = commandArgs(st, n)
		if !st.cmdSet {
			c.Cmd = nil
		}
		msg = fmt.Sprintf("ENTRYPOINT %q", c.Entrypoint)
	case command.User:
		w, err := r.expandAll(st, words(n))
		if err != nil {
			return err
		}
		if len(w) != 1 {
			return fmt.Errorf("dockerfile line %d: USER requires exactly one argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
		}
		c.User = w[0]
		msg = "USER " + w[0]
	case command.StopSignal:
		w, err := r.expandAll(st, words(n))
		if err != nil {
			return err
		}
		if len(w) != 1 {
			return fmt.Errorf("dockerfile line %d: STOPSIGNAL requires exactly one argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
		}
		c.StopSignal = w[0]
		msg = "STOPSIGNAL " + w[0]
	case command.Shell:
		if !n.Attributes["json"] {
			return fmt.Errorf("dockerfile line %d: SHELL requires the arguments to be in JSON form: %w", n.StartLine, errdefs.ErrInvalidArgument)
		}
		c.Shell = words(n)
		if len(c.Shell) == 0 {
			return fmt.Errorf("dockerfile line %d: SHELL requires at least one argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
		}
		msg = fmt.Sprintf("SHELL %v", c.Shell)
	case command.Healthcheck:
		hc, err := healthcheck(st, n)
		if err != nil {
			return err
		}
		c.Healthcheck = hc
		msg = fmt.Sprintf("HEALTHCHECK %q", hc.Test)
	case command.Onbuild:
		if len(n.Next.Children) == 0 {
			return fmt.Errorf("dockerfile line %d: ONBUILD requires an instruction: %w", n.StartLine, errdefs.ErrInvalidArgument)
		}
		trig := n.Next.Children[0]
		switch strings.ToLower(trig.Value) {
		case command.Onbuild, command.From, command.Maintainer:
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger: %w", strings.ToUpper(trig.Value), errdefs.ErrInvalidArgument)
		}
		expr := strings.TrimSpace(trig.Original)
		c.OnBuild = append(c.OnBuild, expr)
		msg = "ONBUILD " + expr
	default:
		return fmt.Errorf("instruction %s: %w", strings.ToUpper(cmd), errdefs.ErrNotImplemented)
	}
	return r.commit(ctx, st, cfg, st.nop(msg), "", kindMeta, nil)
}

// arg declares build arguments in the stage: the value given to the
// build, else the one written, else the global ARG's of that name.
func (r *run) arg(ctx context.Context, st *stage, n *parser.Node, cfg dockerspec.DockerOCIImage) error {
	ws := words(n)
	if len(ws) == 0 {
		return fmt.Errorf("dockerfile line %d: ARG requires at least one argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
	}
	var msgs []string
	for _, w := range ws {
		k, v, hasV := strings.Cut(w, "=")
		var val *string
		if hasV {
			s, err := r.expand(st, v)
			if err != nil {
				return err
			}
			val = &s
			msgs = append(msgs, k+"="+s)
		} else {
			if g, ok := r.global[k]; ok {
				val = g
			}
			msgs = append(msgs, k)
		}
		if bv, ok := r.opts.BuildArgs[k]; ok && bv != nil {
			val = bv
		}
		r.used[k] = true
		if !slices.Contains(st.args, k) {
			st.args = append(st.args, k)
		}
		st.argVals[k] = val
	}
	return r.commit(ctx, st, cfg, st.nop("ARG "+strings.Join(msgs, " ")), "", kindMeta, nil)
}

// exposedPorts normalises EXPOSE's ports to port/proto, ranges unrolled.
func exposedPorts(ws []string) ([]string, error) {
	var out []string
	for _, w := range ws {
		for _, p := range strings.Fields(w) {
			port, proto, _ := strings.Cut(p, "/")
			if proto == "" {
				proto = "tcp"
			}
			proto = strings.ToLower(proto)
			if proto != "tcp" && proto != "udp" && proto != "sctp" {
				return nil, fmt.Errorf("invalid proto: %s: %w", proto, errdefs.ErrInvalidArgument)
			}
			lo, hi, isRange := strings.Cut(port, "-")
			a, err := strconv.ParseUint(lo, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("invalid containerPort: %s: %w", port, errdefs.ErrInvalidArgument)
			}
			b := a
			if isRange {
				if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
					return nil, fmt.Errorf("invalid containerPort: %s: %w", port, errdefs.ErrInvalidArgument)
				}
			}
			for i := a; i <= b; i++ {
				out = append(out, fmt.Sprintf("%d/%s", i, proto))
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

func healthcheck(st *stage, n *parser.Node) (*dockerspec.HealthcheckConfig, error) {
	if n.Next == nil {
		return nil, fmt.Errorf("dockerfile line %d: HEALTHCHECK requires an argument: %w", n.StartLine, errdefs.ErrInvalidArgument)
	}
	typ := strings.ToUpper(n.Next.Value)
	if typ == "NONE" {
		if n.Next.Next != nil || len(n.Flags) > 0 {
			return nil, fmt.Errorf("HEALTHCHECK NONE takes no arguments: %w", errdefs.ErrInvalidArgument)
		}
		return &dockerspec.HealthcheckConfig{Test: []string{"NONE"}}, nil
	}
	if typ != "CMD" {
		return nil, fmt.Errorf("unknown type %q in HEALTHCHECK (try CMD): %w", typ, errdefs.ErrInvalidArgument)
	}
	f, err := flags(n, "interval", "timeout", "start-period", "start-interval", "retries")
	if err != nil {
		return nil, err
	}
	hc := &dockerspec.HealthcheckConfig{}
	if n.Next.Next == nil {
		return nil, fmt.Errorf("missing command after HEALTHCHECK CMD: %w", errdefs.ErrInvalidArgument)
	}
	var args []string
	for c := n.Next.Next; c != nil; c = c.Next {
		args = append(args, c.Value)
	}
	if n.Attributes["json"] {
		hc.Test = append([]string{"CMD"}, args...)
	} else {
		hc.Test = []string{"CMD-SHELL", strings.Join(args, " ")}
	}
	for name, dst := range map[string]*time.Duration{"interval": &hc.Interval, "timeout": &hc.Timeout, "start-period": &hc.StartPeriod, "start-interval": &hc.StartInterval} {
		if v := f[name]; v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("HEALTHCHECK --%s=%s: invalid duration: %w", name, v, errdefs.ErrInvalidArgument)
			}
			*dst = d
		}
	}
	if v := f["retries"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("HEALTHCHECK --retries=%s: %w", v, errdefs.ErrInvalidArgument)
		}
		hc.Retries = n
	}
	return hc, nil
}
