package daemon

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	evtypes "github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/log"
)

// imageConfig is an image's config as docker reads it: the OCI fields plus
// docker's extensions and the few top-level fields docker adds.
type imageConfig struct {
	dockerspec.DockerOCIImage
	Comment string `json:"comment,omitempty"`
}

func (e *Engine) config(ctx context.Context, r image.Record) (imageConfig, error) {
	b, err := content.ReadAll(ctx, e.content, r.ID, image.MaxManifestSize)
	if err != nil {
		return imageConfig{}, fmt.Errorf("image %s: config: %w", r.ID, err)
	}
	var c imageConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return imageConfig{}, fmt.Errorf("image %s: config: %v: %w", r.ID, err, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

func created(c imageConfig, r image.Record) time.Time {
	if c.Created != nil {
		return *c.Created
	}
	return r.Created
}

func familiar(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, image.Familiar(n))
	}
	return out
}

// ImageListOptions selects images as `docker images` does.
type ImageListOptions struct {
	// All lists a build's intermediate images too; docker hides them
	// (untagged images with children) unless -a.
	All bool
	// Filters: dangling=true|false, label=k[=v], reference=pattern,
	// before=image, since=image.
	Filters Filters
}

// ImageListResult is the images, newest first, in the API's shape.
type ImageListResult struct {
	Images []imagetypes.Summary
}

// ImageList lists images.
func (e *Engine) ImageList(ctx context.Context, opts ImageListOptions) (ImageListResult, error) {
	f := opts.Filters
	if err := f.check("dangling", "label", "reference", "before", "since"); err != nil {
		return ImageListResult{}, err
	}
	dangling, danglingSet, err := f.bool("dangling")
	if err != nil {
		return ImageListResult{}, err
	}
	var before, since *time.Time
	for _, k := range []string{"before", "since"} {
		for _, ref := range f[k] {
			r, err := e.images.Lookup(ctx, ref)
			if err != nil {
				return ImageListResult{}, err
			}
			c, err := e.config(ctx, r)
			if err != nil {
				return ImageListResult{}, err
			}
			t := created(c, r)
			if k == "before" {
				before = &t
			} else {
				since = &t
			}
		}
	}
	recs, err := e.images.List(ctx)
	if err != nil {
		return ImageListResult{}, err
	}
	out := ImageListResult{Images: []imagetypes.Summary{}}
	var hidden map[digest.Digest]bool
	if !opts.All {
		hidden = e.intermediates(ctx)
	}
	for _, r := range recs {
		if (danglingSet && r.Dangling() != dangling) || hidden[r.ID] {
			continue
		}
		tags := r.RepoTags
		if pats := f["reference"]; len(pats) > 0 {
			tags = matchReferences(tags, pats)
			if len(tags) == 0 {
				continue
			}
		}
		c, err := e.config(ctx, r)
		if err != nil {
			log.From(ctx).Warn("image list: skipping an image with an unreadable config", log.KeyImage, r.ID, log.KeyErr, err)
			continue
		}
		t := created(c, r)
		if (before != nil && !t.Before(*before)) || (since != nil && !t.After(*since)) {
			continue
		}
		if !f.labels("label", c.Config.Labels) {
			continue
		}
		target := r.Target
		out.Images = append(out.Images, imagetypes.Summary{
			ID:          r.ID.String(),
			RepoTags:    familiar(tags),
			RepoDigests: familiar(r.RepoDigests),
			Created:     t.Unix(),
			Size:        r.Size,
			Labels:      c.Config.Labels,
			Containers:  -1,
			SharedSize:  -1,
			Descriptor:  &target,
		})
	}
	sort.SliceStable(out.Images, func(i, j int) bool { return out.Images[i].Created > out.Images[j].Created })
	return out, nil
}

// matchReferences keeps the names that match one of docker's reference
// patterns: a shell pattern on the familiar repository or repository:tag.
func matchReferences(names, pats []string) []string {
	var out []string
	for _, n := range names {
		ref, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		for _, p := range pats {
			if ok, _ := reference.FamiliarMatch(p, ref); ok {
				out = append(out, n)
				break
			}
			if ok, _ := path.Match(p, reference.FamiliarName(ref)); ok {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// ImageInspectResult is docker's inspect document.
type ImageInspectResult struct {
	imagetypes.InspectResponse
}

// ImageInspectOptions tune ImageInspect.
type ImageInspectOptions struct {
	// Platform, if set (os/arch[/variant] or the API's JSON), is the
	// platform the image must be for (docker's image inspect --platform);
	// berth keeps one platform per image, so another is ErrNotFound.
	Platform string
}

// ImageInspect describes the image ref names.
func (e *Engine) ImageInspect(ctx context.Context, ref string) (ImageInspectResult, error) {
	return e.ImageInspectWith(ctx, ref, ImageInspectOptions{})
}

// ImageInspectWith is ImageInspect with options (the API's platform).
func (e *Engine) ImageInspectWith(ctx context.Context, ref string, opts ImageInspectOptions) (ImageInspectResult, error) {
	r, err := e.images.Lookup(ctx, ref)
	if err != nil {
		return ImageInspectResult{}, err
	}
	if opts.Platform != "" {
		p, err := image.ParsePlatform(opts.Platform)
		if err != nil {
			return ImageInspectResult{}, fmt.Errorf("image inspect: %w", err)
		}
		if err := e.checkPlatform(ctx, r, ref, p); err != nil {
			return ImageInspectResult{}, err
		}
	}
	c, err := e.config(ctx, r)
	if err != nil {
		return ImageInspectResult{}, err
	}
	t := created(c, r)
	var diffs []string
	for _, d := range c.RootFS.DiffIDs {
		diffs = append(diffs, d.String())
	}
	target := r.Target
	cfg := c.Config
	comment := c.Comment
	if comment == "" && len(c.History) > 0 {
		// docker import records its message here too.
		comment = c.History[len(c.History)-1].Comment
	}
	res := imagetypes.InspectResponse{
		ID:           r.ID.String(),
		RepoTags:     familiar(r.RepoTags),
		RepoDigests:  familiar(r.RepoDigests),
		Comment:      comment,
		Created:      t.UTC().Format(time.RFC3339Nano),
		Author:       c.Author,
		Config:       &cfg,
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		OsVersion:    c.OSVersion,
		Size:         r.Size,
		GraphDriver:  &storage.DriverData{Name: e.driver, Data: e.layerDirs(ctx, r)},
		RootFS:       imagetypes.RootFS{Type: c.RootFS.Type, Layers: diffs},
		Metadata:     imagetypes.Metadata{LastTagTime: r.LastTagTime},
		Descriptor:   &target,
	}
	return ImageInspectResult{InspectResponse: res}, nil
}

// layerDirs is docker's GraphDriver.Data for overlay2: the top layer's
// directory as UpperDir (and its WorkDir when it has one), the layers below
// as LowerDir, top first, as overlay's lowerdir lists them. berth keeps no
// merged directory for image layers, so MergedDir is left out. The copy
// driver has no such directories to show (docker's vfs shows none either).
//
// The snapshotter gives directories only as mounts: a short-lived view on
// the top layer yields them and is removed at once. Failing that, inspect
// still answers, without the directories.
func (e *Engine) layerDirs(ctx context.Context, r image.Record) map[string]string {
	out := map[string]string{}
	if e.driver != "overlay" || len(r.Layers) == 0 {
		return out
	}
	key := inspectViewPrefix + rand.Text()
	ms, err := e.snaps.View(ctx, key, r.Layers[len(r.Layers)-1].ChainID.String())
	if err != nil {
		log.From(ctx).Debug("image inspect: no layer directories", log.KeyImage, r.ID, log.KeyErr, err)
		return out
	}
	defer func() {
		if err := e.snaps.Remove(context.WithoutCancel(ctx), key); err != nil {
			log.From(ctx).Warn("image inspect: remove view; it stays until the next start", log.KeySnapshot, key, log.KeyErr, err)
		}
	}()
	var lowers []string
	for _, m := range ms {
		for _, o := range m.Options {
			if l, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lowers = strings.Split(l, ":")
			}
		}
	}
	// A one-layer view has the view's own empty directory below the layer.
	if len(lowers) > len(r.Layers) {
		lowers = lowers[:len(r.Layers)]
	}
	if len(lowers) == 0 {
		return out
	}
	out["UpperDir"] = lowers[0]
	if w := filepath.Join(filepath.Dir(lowers[0]), "work"); dirExists(w) {
		out["WorkDir"] = w
	}
	if len(lowers) > 1 {
		out["LowerDir"] = strings.Join(lowers[1:], ":")
	}
	return out
}

// inspectViewPrefix marks the views layerDirs makes; New removes any a
// crash left behind.
const inspectViewPrefix = "inspect-"

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// ImageHistory lists the image's history, newest first, as docker does:
// entries that made a layer carry its size; the top one carries the
// image ID, the others "<missing>" (berth keeps no parent images).
func (e *Engine) ImageHistory(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error) {
	r, err := e.images.Lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	c, err := e.config(ctx, r)
	if err != nil {
		return nil, err
	}
	hist := c.History
	if len(hist) == 0 {
		// An image without history gets one entry per layer.
		for range r.Layers {
			hist = append(hist, ocispec.History{Created: c.Created})
		}
	}
	var out []imagetypes.HistoryResponseItem
	layer := 0
	for _, h := range hist {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(r.Layers) {
			item.Size = r.Layers[layer].Size
			layer++
		}
		out = append(out, item)
	}
	slices.Reverse(out)
	if len(out) > 0 {
		out[0].ID = r.ID.String()
		out[0].Tags = familiar(r.RepoTags)
	}
	return out, nil
}

// ImageTagOptions names an image and the tag to give it.
type ImageTagOptions struct {
	Source string // any reference Lookup accepts
	Target string // name[:tag]
}

// ImageTag adds a tag to an image, moving it from any other.
func (e *Engine) ImageTag(ctx context.Context, opts ImageTagOptions) error {
	r, err := e.images.Lookup(ctx, opts.Source)
	if err != nil {
		return err
	}
	t, err := image.ParseTag(opts.Target)
	if err != nil {
		return err
	}
	if _, err = e.images.Tag(ctx, r.ID, t); err != nil {
		return err
	}
	e.emitImage(ctx, evtypes.ActionTag, r.ID.String(), reference.FamiliarString(t))
	return nil
}

// ImageRemoveOptions says what `rmi` removes.
type ImageRemoveOptions struct {
	// Force removes an image referenced by several repositories, or used
	// by a stopped container.
	Force bool
}

// ImageRemoveResult lists what was untagged and deleted, in order.
type ImageRemoveResult struct {
	Items []imagetypes.DeleteResponse
}

// ImageRemove removes ref as `docker rmi` does. A name (tag or repo
// digest) untags only that name; when it was the repository's last tag,
// the repo digests of the same repository go with it (they would
// otherwise keep an image nobody can name by tag), and when no name
// remains the image is deleted. An ID deletes the image (an image in
// several repositories needs Force). Blobs and layer snapshots that no
// other image shares are freed. Each untag and the delete publish an
// image event, also when a later step fails.
func (e *Engine) ImageRemove(ctx context.Context, ref string, opts ImageRemoveOptions) (ImageRemoveResult, error) {
	r, err := e.images.Lookup(ctx, ref)
	if err != nil {
		return ImageRemoveResult{}, err
	}
	users, err := e.imageUsers(ctx, r.ID)
	if err != nil {
		return ImageRemoveResult{}, fmt.Errorf("remove image %s: %w", ref, err)
	}
	short := r.ID.Encoded()[:12]
	var res ImageRemoveResult
	untag := func(n string, event bool) error {
		if _, err := e.images.Untag(ctx, n); err != nil {
			return err
		}
		res.Items = append(res.Items, imagetypes.DeleteResponse{Untagged: image.Familiar(n)})
		if event {
			// docker names the image by its ID in untag events.
			e.emitImage(ctx, evtypes.ActionUnTag, r.ID.String(), r.ID.String())
		}
		return nil
	}
	names := append(slices.Clone(r.RepoTags), r.RepoDigests...)
	name, nerr := normalisedName(ref)
	if nerr == nil && slices.Contains(names, name) {
		// docker refuses to leave a container's image nameless unless
		// forced.
		if len(users) > 0 && !opts.Force && singleReference(names) {
			return res, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w", ref, shortID(users[0].ID), short, errdefs.ErrConflict)
		}
		if err := untag(name, true); err != nil {
			return res, err
		}
		names = slices.DeleteFunc(names, func(n string) bool { return n == name })
		if repo, isTag := tagRepo(name); isTag && !slices.ContainsFunc(names, func(n string) bool {
			rp, t := tagRepo(n)
			return t && rp == repo
		}) {
			for _, n := range slices.Clone(names) {
				if rp, t := tagRepo(n); !t && rp == repo {
					// docker publishes no event for these.
					if err := untag(n, false); err != nil {
						return res, err
					}
					names = slices.DeleteFunc(names, func(x string) bool { return x == n })
				}
			}
		}
		if len(names) > 0 {
			return res, nil
		}
	} else if !isIDPrefix(r.ID, ref) {
		// A name the image does not carry (name@digest of its manifest
		// under another repository): docker has nothing to untag, and
		// deleting the image for it would surprise.
		return res, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound) //nolint:staticcheck // docker's words, shown to users
	} else if len(repos(names)) > 1 && !opts.Force {
		return res, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", short, errdefs.ErrConflict)
	}
	for _, u := range users {
		if u.Running {
			return res, fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s: %w", short, shortID(u.ID), errdefs.ErrConflict)
		}
		if !opts.Force {
			return res, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s: %w", short, shortID(u.ID), errdefs.ErrConflict)
		}
	}
	for _, n := range names {
		if err := untag(n, true); err != nil {
			return res, err
		}
	}
	if len(users) > 0 {
		// Forced while a stopped container uses it: docker keeps the
		// image, untagged, so the container still has its layers.
		return res, nil
	}
	if err := e.images.Delete(ctx, r.ID); err != nil {
		return res, err
	}
	res.Items = append(res.Items, imagetypes.DeleteResponse{Deleted: r.ID.String()})
	e.emitImage(ctx, evtypes.ActionDelete, r.ID.String(), r.ID.String())
	if _, err := e.collect(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// isIDPrefix reports whether ref names id by (a prefix of) the ID, with
// or without "sha256:".
func isIDPrefix(id digest.Digest, ref string) bool {
	return ref != "" && (strings.HasPrefix(id.String(), ref) || strings.HasPrefix(id.Encoded(), ref))
}

// tagRepo is the repository of a normalised name and whether the name is
// a tag (not a repo digest).
func tagRepo(name string) (repo string, isTag bool) {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name, false
	}
	_, digested := n.(reference.Canonical)
	return n.Name(), !digested
}

// singleReference reports whether names are one repository's: at most
// one tag, and digests only of that repository. Removing such a name
// leaves the image without a repository, so docker guards it.
func singleReference(names []string) bool {
	if len(names) == 0 {
		return false
	}
	tags := 0
	for _, n := range names {
		if _, t := tagRepo(n); t {
			tags++
		}
	}
	return tags <= 1 && len(repos(names)) == 1
}

// collect frees what no image references any more.
func (e *Engine) collect(ctx context.Context) (image.Collected, error) {
	c, err := e.images.Collect(ctx, e.content, e.snaps)
	if err != nil {
		return c, err
	}
	if len(c.Blobs)+len(c.Snapshots) > 0 {
		log.From(ctx).Debug("collected", "blobs", len(c.Blobs), "snapshots", len(c.Snapshots), "bytes", c.Bytes)
	}
	return c, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func normalisedName(ref string) (string, error) {
	n, err := image.ParseReference(ref)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

func repos(tags []string) map[string]bool {
	out := map[string]bool{}
	for _, t := range tags {
		if n, err := reference.ParseNormalizedNamed(t); err == nil {
			out[n.Name()] = true
		}
	}
	return out
}

// ImagePruneOptions selects what `image prune` removes.
type ImagePruneOptions struct {
	// All removes every image no container uses, not only dangling ones.
	All bool
	// Filters: until=<time or duration>, label=k[=v], label!=k[=v].
	Filters Filters
}

// ImagePruneResult is docker's prune report.
type ImagePruneResult struct {
	imagetypes.PruneReport
}

// ImagePrune removes unused images, then frees their blobs and snapshots.
func (e *Engine) ImagePrune(ctx context.Context, opts ImagePruneOptions) (ImagePruneResult, error) {
	f := opts.Filters
	if err := f.check("until", "label", "label!", "dangling"); err != nil {
		return ImagePruneResult{}, err
	}
	all := opts.All
	if d, set, err := f.bool("dangling"); err != nil {
		return ImagePruneResult{}, err
	} else if set {
		all = !d
	}
	var until time.Time
	for _, u := range f["until"] {
		t, err := parseTime(u, time.Now())
		if err != nil {
			return ImagePruneResult{}, err
		}
		until = t
	}
	recs, err := e.images.List(ctx)
	if err != nil {
		return ImagePruneResult{}, err
	}
	res := ImagePruneResult{PruneReport: imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}}
	// A build's intermediate images have children: not dangling to
	// docker, and the build cache's steps.
	kept := e.intermediates(ctx)
	for _, r := range recs {
		if !all && (!r.Dangling() || kept[r.ID]) {
			continue
		}
		c, err := e.config(ctx, r)
		if err != nil {
			return res, err
		}
		if !until.IsZero() && !created(c, r).Before(until) {
			continue
		}
		if !f.labels("label", c.Config.Labels) {
			continue
		}
		if len(f["label!"]) > 0 && f.labels("label!", c.Config.Labels) {
			continue
		}
		users, err := e.imageUsers(ctx, r.ID)
		if err != nil {
			return res, err
		}
		if len(users) > 0 {
			continue
		}
		if err := e.images.Delete(ctx, r.ID); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				continue // removed meanwhile by someone else
			}
			return res, err
		}
		for _, n := range append(slices.Clone(r.RepoTags), r.RepoDigests...) {
			res.ImagesDeleted = append(res.ImagesDeleted, imagetypes.DeleteResponse{Untagged: image.Familiar(n)})
			e.emitImage(ctx, evtypes.ActionUnTag, r.ID.String(), r.ID.String())
		}
		res.ImagesDeleted = append(res.ImagesDeleted, imagetypes.DeleteResponse{Deleted: r.ID.String()})
		e.emitImage(ctx, evtypes.ActionDelete, r.ID.String(), r.ID.String())
	}
	c, err := e.collect(ctx)
	if err != nil {
		return res, err
	}
	res.SpaceReclaimed = uint64(c.Bytes)
	// docker's prune event has no actor ID, only what was reclaimed.
	e.Emit(ctx, evtypes.ImageEventType, evtypes.ActionPrune, "", map[string]string{"reclaimed": itoa(int64(res.SpaceReclaimed))})
	return res, nil
}

// parseTime reads docker's until/since values: a Unix timestamp, an
// RFC 3339 time or date, or a Go duration counted back from now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	var sec, nsec int64
	if n, _ := fmt.Sscanf(s, "%d.%d", &sec, &nsec); n >= 1 {
		return time.Unix(sec, nsec), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want a timestamp, an RFC 3339 time or a duration: %w", s, errdefs.ErrInvalidArgument)
}
