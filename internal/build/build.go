package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/command"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// Options are a build's: POST /build's query and body.
type Options struct {
	// Context is the build context as a tar (plain or compressed); nil
	// is an empty context.
	Context io.Reader
	// Dockerfile is the Dockerfile's path in the context ("Dockerfile").
	Dockerfile string
	// Tags name the result (name[:tag]).
	Tags []string
	// BuildArgs set ARGs; a nil value takes the variable from nowhere
	// (docker: from the client's environment, resolved by the client).
	BuildArgs map[string]*string
	// Labels are added to the final image, as a last LABEL step.
	Labels map[string]string
	// NoCache builds every step afresh.
	NoCache bool
	// Pull fetches every FROM image from its registry even when present
	// (absent ones are always pulled).
	Pull bool
	// Registries are credentials for pulls by registry: "host[:port]",
	// or docker's "https://index.docker.io/v1/" for Docker Hub (the
	// docker CLI's X-Registry-Config).
	Registries map[string]RegistryAuth
	// Target stops after the stage of that name.
	Target string
	// NetworkMode is RUN's network; "" and "default" mean none.
	NetworkMode string
	// Limits are settings for the RUN containers.
	Limits RunLimits
	// Platform, if set, must be the host's: berth builds no other.
	Platform string
	// Output gets the progress text, docker's legacy builder lines.
	Output io.Writer
	// Aux, if set, gets the final image's ID before the closing lines.
	Aux func(id digest.Digest)
}

// Result is the built image.
type Result struct {
	ID digest.Digest
	// Tags are the names given, normalised (docker.io/library/x:latest).
	Tags []string
}

// Builder runs builds. It is safe for concurrent use.
type Builder struct {
	b     Backend
	dir   string
	cache *cache
}

// New returns a Builder that keeps its cache and scratch space in dir.
func New(b Backend, dir string) (*Builder, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("new builder: %w", err)
	}
	// Contexts of builds a crash cut short.
	if old, err := filepath.Glob(filepath.Join(dir, "ctx-*")); err == nil {
		for _, d := range old {
			_ = os.RemoveAll(d)
		}
	}
	c, err := openCache(filepath.Join(dir, "cache.json"))
	if err != nil {
		return nil, err
	}
	return &Builder{b: b, dir: dir, cache: c}, nil
}

// Parents are the images the cache knows as the base of another step's
// image: docker's intermediate images, which docker images lists only
// with -a when untagged.
func (bd *Builder) Parents() map[digest.Digest]bool { return bd.cache.parents() }

// PruneResult says what a cache prune removed.
type PruneResult struct {
	Entries        int
	SpaceReclaimed int64
}

// Prune forgets the cache and removes the images only it kept (untagged
// and unused).
func (bd *Builder) Prune(ctx context.Context) (PruneResult, error) {
	n := bd.cache.len()
	ids, err := bd.cache.drain()
	if err != nil {
		return PruneResult{}, err
	}
	freed, err := bd.b.RemoveUnused(ctx, ids)
	return PruneResult{Entries: n, SpaceReclaimed: freed}, err
}

// predefinedArgs may be given without an ARG line; like docker, they do
// not appear in the image's history.
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

var defaultShell = []string{"/bin/sh", "-c"}

// Build builds the Dockerfile of opts.Context. On error the images of the
// steps that succeeded stay (they are the cache); the failing step leaves
// nothing.
func (bd *Builder) Build(ctx context.Context, opts Options) (Result, error) {
	var res Result
	for _, t := range opts.Tags {
		n, err := image.ParseTag(t)
		if err != nil {
			return res, fmt.Errorf("invalid tag %q: %w", t, errdefs.ErrInvalidArgument)
		}
		res.Tags = append(res.Tags, n.String())
	}
	if opts.Platform != "" {
		p, err := image.ParsePlatform(opts.Platform)
		if err != nil {
			return res, err
		}
		if p.OS != "linux" || p.Architecture != "" && p.Architecture != runtime.GOARCH {
			return res, fmt.Errorf("build for platform %s: only %s/%s is built here: %w", opts.Platform, "linux", runtime.GOARCH, errdefs.ErrNotImplemented)
		}
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	dir, err := os.MkdirTemp(bd.dir, "ctx-")
	if err != nil {
		return res, fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := unpackContext(ctx, dir, opts.Context); err != nil {
		return res, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return res, fmt.Errorf("build: %w", err)
	}
	defer root.Close()
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	rel, err := cleanSource(name)
	if err != nil {
		return res, err
	}
	data, err := readRegular(root, rel, maxDockerfile)
	if err != nil {
		return res, fmt.Errorf("Cannot locate specified Dockerfile: %s: %w", name, errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	pr, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return res, fmt.Errorf("dockerfile parse error: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(pr.AST.Children) == 0 {
		return res, fmt.Errorf("the Dockerfile (%s) cannot be empty: %w", name, errdefs.ErrInvalidArgument)
	}
	if err := applyDockerignore(root); err != nil {
		return res, err
	}
	if strings.HasPrefix(rel, ".dockerfile.") {
		// A Dockerfile from outside the context, which the client sent
		// in it under a random name: not part of what COPY . copies
		// (docker's CLI lists it in .dockerignore for the same end).
		_ = root.Remove(rel)
	}
	r := &run{bd: bd, opts: opts, out: out, lex: shell.NewLex(pr.EscapeToken), ctxRoot: root,
		global: map[string]*string{}, used: map[string]bool{}, done: map[string]*stage{}}
	plan, err := r.plan(pr.AST.Children)
	if err != nil {
		return res, err
	}
	last, err := r.execute(ctx, plan)
	if err != nil {
		return res, err
	}
	if last.img.ID == "" {
		return res, fmt.Errorf("No image was generated. Is your Dockerfile empty?: %w", errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	r.warnUnusedArgs()
	res.ID = last.img.ID
	if opts.Aux != nil {
		opts.Aux(res.ID)
	}
	fmt.Fprintf(out, "Successfully built %s\n", shortID(res.ID))
	for i, t := range res.Tags {
		if err := bd.b.Tag(ctx, res.ID, t); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "Successfully tagged %s\n", familiarTag(opts.Tags[i], t))
	}
	return res, nil
}

// registryAuth is the credential given for ref's registry, if any.
func (r *run) registryAuth(ref string) *RegistryAuth {
	n, err := image.ParseReference(ref)
	if err != nil {
		return nil
	}
	host := reference.Domain(n)
	keys := []string{host}
	if host == "docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "index.docker.io")
	}
	for _, k := range keys {
		if a, ok := r.opts.Registries[k]; ok {
			return &a
		}
	}
	return nil
}

// isID reports whether ref names an image by ID, which no registry has.
func isID(ref string) bool {
	if strings.HasPrefix(ref, "sha256:") {
		return true
	}
	if len(ref) < 12 || len(ref) > 64 {
		return false
	}
	return strings.Trim(ref, "0123456789abcdef") == ""
}

func familiarTag(given, normal string) string {
	f := image.Familiar(normal)
	if f == "" {
		return given
	}
	return f
}

func shortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// stagePlan is one FROM and its instructions.
type stagePlan struct {
	from *parser.Node
	name string
	cmds []*parser.Node
}

type buildPlan struct {
	meta   []*parser.Node // ARGs before the first FROM
	stages []stagePlan
}

// run is one build in progress.
type run struct {
	bd      *Builder
	opts    Options
	out     io.Writer
	lex     *shell.Lex
	ctxRoot *os.Root

	global map[string]*string // ARGs declared before the first FROM
	used   map[string]bool    // build args some ARG consumed
	done   map[string]*stage  // finished stages by lower-cased name and index
	step   int
	total  int
}

// stage is the state of the stage being built.
type stage struct {
	name string
	img  Image
	// args are the ARGs in scope, in declaration order, and their values.
	args    []string
	argVals map[string]*string
	// cmdSet: this stage set CMD, so ENTRYPOINT keeps it.
	cmdSet bool
}

// plan splits the instructions into stages up to the target, checking
// every instruction name first so an unknown one fails before any work.
func (r *run) plan(nodes []*parser.Node) (buildPlan, error) {
	var p buildPlan
	for _, n := range nodes {
		cmd := strings.ToLower(n.Value)
		if _, ok := command.Commands[cmd]; !ok {
			return p, fmt.Errorf("dockerfile parse error on line %d: unknown instruction: %s: %w", n.StartLine, strings.ToUpper(n.Value), errdefs.ErrInvalidArgument)
		}
		if len(n.Heredocs) > 0 {
			return p, fmt.Errorf("dockerfile line %d: heredocs need BuildKit; the legacy builder does not run them: %w", n.StartLine, errdefs.ErrNotImplemented)
		}
		switch {
		case cmd == command.From:
			sp := stagePlan{from: n}
			if w := words(n); len(w) == 3 && strings.EqualFold(w[1], "as") {
				sp.name = strings.ToLower(w[2])
			} else if len(w) != 1 {
				return p, fmt.Errorf("dockerfile line %d: FROM requires either one or three arguments: %w", n.StartLine, errdefs.ErrInvalidArgument)
			}
			p.stages = append(p.stages, sp)
		case len(p.stages) == 0 && cmd == command.Arg:
			p.meta = append(p.meta, n)
		case len(p.stages) == 0:
			return p, fmt.Errorf("no build stage in current context: %w", errdefs.ErrInvalidArgument)
		default:
			p.stages[len(p.stages)-1].cmds = append(p.stages[len(p.stages)-1].cmds, n)
		}
	}
	if len(p.stages) == 0 {
		return p, fmt.Errorf("no build stage in current context: %w", errdefs.ErrInvalidArgument)
	}
	if r.opts.Target != "" {
		i := slices.IndexFunc(p.stages, func(s stagePlan) bool { return s.name == strings.ToLower(r.opts.Target) })
		if i < 0 {
			return p, fmt.Errorf("failed to reach build target %s in Dockerfile: %w", r.opts.Target, errdefs.ErrInvalidArgument)
		}
		p.stages = p.stages[:i+1]
	}
	if len(r.opts.Labels) > 0 {
		keys := slices.Sorted(maps.Keys(r.opts.Labels))
		n := &parser.Node{Value: "label", Original: "LABEL"}
		tail := &n.Next
		for _, k := range keys {
			n.Original += fmt.Sprintf(" %q=%q", k, r.opts.Labels[k])
			kv := &parser.Node{Value: k, Next: &parser.Node{Value: r.opts.Labels[k], Next: &parser.Node{Value: "="}}}
			*tail = kv
			tail = &kv.Next.Next.Next
		}
		// The labels are not to be expanded: mark them as literal.
		n.Attributes = map[string]bool{"literal": true}
		lst := &p.stages[len(p.stages)-1]
		lst.cmds = append(lst.cmds, n)
	}
	r.total = len(p.meta)
	for _, s := range p.stages {
		r.total += 1 + len(s.cmds)
	}
	return p, nil
}

func (r *run) execute(ctx context.Context, p buildPlan) (*stage, error) {
	for _, n := range p.meta {
		r.printStep(n)
		if err := r.globalArg(n); err != nil {
			return nil, err
		}
	}
	var st *stage
	for i, sp := range p.stages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.printStep(sp.from)
		var err error
		if st, err = r.from(ctx, sp); err != nil {
			return nil, err
		}
		for _, n := range sp.cmds {
			r.printStep(n)
			if err := r.dispatch(ctx, st, n); err != nil {
				return nil, err
			}
		}
		r.done[fmt.Sprint(i)] = st
		if sp.name != "" {
			r.done[sp.name] = st
		}
	}
	return st, nil
}

func (r *run) printStep(n *parser.Node) {
	r.step++
	fmt.Fprintf(r.out, "Step %d/%d : %s\n", r.step, r.total, n.Original)
}

// words are an instruction's arguments as the parser left them.
func words(n *parser.Node) []string {
	var out []string
	for c := n.Next; c != nil; c = c.Next {
		out = append(out, c.Value)
	}
	return out
}

// buildkitFlags are instruction flags only BuildKit has: the legacy
// builder refuses them by name rather than as unknown.
var buildkitFlags = map[string]bool{
	"run mount": true, "run network": true, "run security": true, "run device": true,
	"copy link": true, "copy parents": true, "copy exclude": true,
	"add link": true, "add checksum": true, "add keep-git-dir": true, "add exclude": true,
}

// flags parses an instruction's --name=value flags, allowing only names.
func flags(n *parser.Node, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range n.Flags {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if !slices.Contains(allowed, k) {
			if buildkitFlags[strings.ToLower(n.Value)+" "+k] {
				return nil, fmt.Errorf("the --%s option requires BuildKit, which this daemon does not run: %w", k, errdefs.ErrNotImplemented)
			}
			return nil, fmt.Errorf("dockerfile line %d: unknown flag: %s: %w", n.StartLine, k, errdefs.ErrInvalidArgument)
		}
		out[k] = v
	}
	return out, nil
}

// env is what words of the stage expand with: its ARGs, overridden by
// its ENV (docker: an ENV shadows an ARG of the same name).
func (st *stage) env() []string {
	var out []string
	for _, k := range st.args {
		if v := st.argVals[k]; v != nil {
			out = append(out, k+"="+*v)
		}
	}
	return append(out, st.img.Config.Config.Env...)
}

func (r *run) expand(st *stage, w string) (string, error) {
	s, _, err := r.lex.ProcessWord(w, shell.EnvsFromSlice(st.env()))
	return s, err
}

func (r *run) expandAll(st *stage, ws []string) ([]string, error) {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		s, err := r.expand(st, w)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// globalArg is an ARG before the first FROM: it only feeds FROM lines
// and the same-named ARG inside stages.
func (r *run) globalArg(n *parser.Node) error {
	var env []string
	for k, v := range r.global {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	for _, w := range words(n) {
		k, v, hasV := strings.Cut(w, "=")
		var val *string
		if hasV {
			s, _, err := r.lex.ProcessWord(v, shell.EnvsFromSlice(env))
			if err != nil {
				return err
			}
			val = &s
		}
		if bv, ok := r.opts.BuildArgs[k]; ok && bv != nil {
			val = bv
			r.used[k] = true
		}
		r.global[k] = val
		if val != nil {
			env = append(env, k+"="+*val)
		}
	}
	return nil
}

func (r *run) warnUnusedArgs() {
	var unused []string
	for k := range r.opts.BuildArgs {
		if !r.used[k] && !predefinedArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(r.out, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
}

// cloneConfig deep-copies an image config.
func cloneConfig(c dockerspec.DockerOCIImage) dockerspec.DockerOCIImage {
	b, _ := json.Marshal(c)
	var out dockerspec.DockerOCIImage
	_ = json.Unmarshal(b, &out)
	return out
}

// scratchConfig is the config of FROM scratch.
func scratchConfig() dockerspec.DockerOCIImage {
	var c dockerspec.DockerOCIImage
	c.Platform = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	c.RootFS = ocispec.RootFS{Type: "layers"}
	return c
}

func (r *run) from(ctx context.Context, sp stagePlan) (*stage, error) {
	f, err := flags(sp.from, "platform")
	if err != nil {
		return nil, err
	}
	var env []string
	for k, v := range r.global {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	ref, _, err := r.lex.ProcessWord(words(sp.from)[0], shell.EnvsFromSlice(env))
	if err != nil {
		return nil, err
	}
	if p := f["platform"]; p != "" {
		if pl, err := image.ParsePlatform(p); err != nil || pl.OS != "linux" || pl.Architecture != "" && pl.Architecture != runtime.GOARCH {
			return nil, fmt.Errorf("FROM --platform=%s: only linux/%s is built here: %w", p, runtime.GOARCH, errdefs.ErrNotImplemented)
		}
	}
	st := &stage{name: sp.name, argVals: map[string]*string{}}
	switch prev, ok := r.done[strings.ToLower(ref)]; {
	case ok:
		st.img = prev.img
	case strings.EqualFold(ref, "scratch"):
		st.img = Image{Config: scratchConfig()}
		return st, nil
	case ref == "":
		return nil, fmt.Errorf("FROM requires an image name: %w", errdefs.ErrInvalidArgument)
	default:
		im, err := r.bd.b.Image(ctx, ref)
		if r.opts.Pull || errors.Is(err, errdefs.ErrNotFound) && !isID(ref) {
			im, err = r.bd.b.Pull(ctx, ref, r.registryAuth(ref), r.out)
		}
		if err != nil {
			return nil, fmt.Errorf("FROM %s: %w", ref, err)
		}
		st.img = im
	}
	fmt.Fprintf(r.out, " ---> %s\n", shortID(st.img.ID))
	if triggers := st.img.Config.Config.OnBuild; len(triggers) > 0 {
		st.img.Config = cloneConfig(st.img.Config)
		st.img.Config.Config.OnBuild = nil
		if err := r.onBuild(ctx, st, triggers); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// onBuild runs the base image's ONBUILD triggers, in order, as docker
// does right after FROM.
func (r *run) onBuild(ctx context.Context, st *stage, triggers []string) error {
	s := "s"
	if len(triggers) == 1 {
		s = ""
	}
	fmt.Fprintf(r.out, "# Executing %d build trigger%s\n", len(triggers), s)
	for _, t := range triggers {
		pr, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return fmt.Errorf("ONBUILD trigger %q: %v: %w", t, err, errdefs.ErrInvalidArgument)
		}
		for _, n := range pr.AST.Children {
			switch strings.ToLower(n.Value) {
			case command.Onbuild, command.From, command.Maintainer:
				return fmt.Errorf("%s isn't allowed as an ONBUILD trigger: %w", strings.ToUpper(n.Value), errdefs.ErrInvalidArgument)
			}
			if _, ok := command.Commands[strings.ToLower(n.Value)]; !ok {
				return fmt.Errorf("ONBUILD trigger: unknown instruction: %s: %w", strings.ToUpper(n.Value), errdefs.ErrInvalidArgument)
			}
			if err := r.dispatch(ctx, st, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// shell is the stage's shell for the shell forms.
func (st *stage) shell() []string {
	if s := st.img.Config.Config.Shell; len(s) > 0 {
		return s
	}
	return defaultShell
}

// nop is the history line of a metadata-only step, as docker writes it.
func (st *stage) nop(msg string) string {
	return strings.Join(append(slices.Clone(st.shell()), "#(nop) ", msg), " ")
}

// commitKind says what a step makes.
type commitKind int

const (
	kindMeta commitKind = iota
	kindRun
	kindMutate
)

// commit makes (or finds in the cache) the image of one step: cfg on
// the stage's image, with history line createdBy. extra is what besides
// the parent and createdBy decides the result.
func (r *run) commit(ctx context.Context, st *stage, cfg dockerspec.DockerOCIImage, createdBy, extra string, kind commitKind, makeImage func(cfg dockerspec.DockerOCIImage) (digest.Digest, error)) error {
	parent := st.img.ID
	key := stepKey(parent, createdBy, extra)
	if !r.opts.NoCache {
		if id, ok := r.bd.cache.get(key); ok {
			im, err := r.bd.b.Image(ctx, id.String())
			if err == nil {
				fmt.Fprintf(r.out, " ---> Using cache\n ---> %s\n", shortID(id))
				st.img = im
				return nil
			}
			if errors.Is(err, errdefs.ErrNotFound) {
				_ = r.bd.cache.forget(key)
			}
		}
	}
	now := nowUTC()
	cfg.Created = &now
	cfg.History = append(cfg.History, ocispec.History{Created: &now, CreatedBy: createdBy, EmptyLayer: kind == kindMeta})
	var id digest.Digest
	var err error
	switch kind {
	case kindMeta:
		id, err = r.bd.b.Commit(ctx, CommitOptions{Base: st.img.ID, Config: cfg})
	default:
		id, err = makeImage(cfg)
	}
	if err != nil {
		return err
	}
	im, err := r.bd.b.Image(ctx, id.String())
	if err != nil {
		return err
	}
	st.img = im
	if err := r.bd.cache.put(key, id, parent, r.opts.NoCache); err != nil {
		return err
	}
	fmt.Fprintf(r.out, " ---> %s\n", shortID(id))
	return nil
}

// isRegular reports whether fi is a regular file (for ADD's archives).
func isRegular(fi fs.FileInfo) bool { return fi.Mode().IsRegular() }
