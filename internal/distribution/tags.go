package distribution

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Tags lists the tags of repo's repository at its registry (for pull -a),
// following the registry's pagination.
func (c *Client) Tags(ctx context.Context, repo reference.Named, auth *AuthConfig) ([]string, error) {
	gref, err := c.gname(reference.TagNameOnly(reference.TrimNamed(repo)))
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", reference.FamiliarName(repo), err)
	}
	tags, err := remote.List(gref.Context(), c.remoteOptions(ctx, auth, nil)...)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", reference.FamiliarName(repo), classify(err))
	}
	return tags, nil
}
