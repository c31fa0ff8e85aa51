package distribution_test

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/distribution"
)

// ExampleClient_Pull pulls an image into a content store and hands each
// layer on as soon as its blob is committed; the repo digest to record is
// the Target's. (Compiled, not run: it needs a registry.)
func ExampleClient_Pull() {
	ctx := context.Background()
	store, err := content.Open(ctx, "/var/lib/berth/content")
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ref, _ := reference.ParseNormalizedNamed("127.0.0.1:5000/team/app:1.2")
	c := distribution.New(distribution.Config{Insecure: []string{"registry.lan:5000"}})
	res, err := c.Pull(ctx, ref, store, distribution.PullOptions{
		Auth: &distribution.AuthConfig{Username: "me", Password: "secret"},
		Layer: func(ctx context.Context, i int, l ocispec.Descriptor) error {
			// Start unpacking layer i from store.Open(ctx, l.Digest).
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s@%s: image %s, %d layers\n", reference.TrimNamed(ref), res.Target.Digest, res.Config.Digest, len(res.Layers))
}
