package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ParseReference normalises s as docker does: "busybox" becomes
// docker.io/library/busybox:latest, a name without tag or digest gets
// :latest, and registries with ports keep them. A reference with a digest
// keeps it (and its tag, if both were given).
func ParseReference(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return reference.TagNameOnly(n), nil
}

// ParseTag parses a reference that names a tag (for `tag`, `save`, load's
// RepoTags): a digest is refused, a missing tag is :latest.
func ParseTag(s string) (reference.NamedTagged, error) {
	n, err := ParseReference(s)
	if err != nil {
		return nil, err
	}
	if _, ok := n.(reference.Digested); ok {
		return nil, fmt.Errorf("reference %q: a tag cannot contain a digest: %w", s, errdefs.ErrInvalidArgument)
	}
	t, ok := n.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("reference %q: no tag: %w", s, errdefs.ErrInvalidArgument)
	}
	return t, nil
}

// Familiar is the short form docker shows: docker.io/library/busybox:latest
// is busybox:latest. A string that does not parse is returned unchanged.
func Familiar(s string) string {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	return reference.FamiliarString(n)
}

// FamiliarRepoTag splits a normalised name into docker's REPOSITORY and TAG
// (or digest) columns.
func FamiliarRepoTag(s string) (repo, tag string) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s, ""
	}
	repo = reference.FamiliarName(n)
	switch r := n.(type) {
	case reference.Tagged:
		return repo, r.Tag()
	case reference.Digested:
		return repo, r.Digest().String()
	}
	return repo, ""
}

// RepoDigest is the repo-digest string docker records: name@sha256:… for
// the manifest digest m, dropping any tag of n.
func RepoDigest(n reference.Named, m digest.Digest) (string, error) {
	c, err := reference.WithDigest(reference.TrimNamed(n), m)
	if err != nil {
		return "", fmt.Errorf("repo digest %s@%s: %v: %w", n.Name(), m, err, errdefs.ErrInvalidArgument)
	}
	return c.String(), nil
}

// looksLikeID reports whether s could be an image ID or a prefix of one, as
// docker accepts in place of a name: hex, optionally "sha256:"-prefixed.
func looksLikeID(s string) (prefix string, ok bool) {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 0 || len(s) > 64 {
		return "", false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return s, true
}
