package build

import (
	"context"
	"fmt"
	"io"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
)

// Image is an image as the builder sees it: its ID and config.
type Image struct {
	ID     digest.Digest
	Config dockerspec.DockerOCIImage
}

// Backend is what a build needs from the engine. Every method that makes
// an image stores it, untagged, before it returns, and leaves nothing
// behind (no container, no working snapshot) whether it succeeds or not.
// Implementations must be safe for concurrent use: two builds may run at
// once.
type Backend interface {
	// Image resolves ref (a name or an ID) to a local image; errors wrap
	// errdefs.ErrNotFound when there is none.
	Image(ctx context.Context, ref string) (Image, error)
	// Pull fetches ref from its registry for FROM (absent, or --pull),
	// with auth (nil: anonymous), writing docker's status lines to out.
	Pull(ctx context.Context, ref string, auth *RegistryAuth, out io.Writer) (Image, error)
	// Run runs opts.Args in a container on opts.Base and makes an image
	// of the result: opts.Config plus the container's changes as a new
	// layer. A non-zero exit is an *ExitError.
	Run(ctx context.Context, opts RunOptions) (digest.Digest, error)
	// Mutate calls opts.Write with the path of a writable root filesystem
	// holding opts.Base ("" is an empty one) and makes an image of
	// opts.Config plus what Write changed, as a new layer.
	Mutate(ctx context.Context, opts MutateOptions) (digest.Digest, error)
	// Commit makes an image of opts.Config over the layers of opts.Base,
	// with no new layer (metadata-only instructions).
	Commit(ctx context.Context, opts CommitOptions) (digest.Digest, error)
	// View calls fn with the path of a read-only root filesystem of the
	// image id ("" is an empty one), valid during the call.
	View(ctx context.Context, id digest.Digest, fn func(root string) error) error
	// Tag names the image id ref.
	Tag(ctx context.Context, id digest.Digest, ref string) error
	// RemoveUnused removes the images of ids that are untagged and that no
	// container or other image uses, and says how many bytes it freed.
	RemoveUnused(ctx context.Context, ids []digest.Digest) (int64, error)
}

// RunLimits are the build's settings for its RUN containers (docker
// build's --add-host, --shm-size, --memory, --cpu-*). Zero values leave
// the engine's defaults.
type RunLimits struct {
	ExtraHosts                     []string
	ShmSize, Memory, MemorySwap    int64
	CPUShares, CPUPeriod, CPUQuota int64
	CPUSetCPUs, CPUSetMems         string
}

// RegistryAuth is a credential for one registry (docker's AuthConfig).
type RegistryAuth struct {
	Username, Password, IdentityToken, RegistryToken string
}

// RunOptions describe a RUN step.
type RunOptions struct {
	// Base is the image the container starts from.
	Base digest.Digest
	// Args is the command, shell included for the shell form.
	Args []string
	// Env is the container's environment: the image's and the build
	// arguments in scope.
	Env []string
	// User and WorkingDir are the image's, as the step sees them.
	User, WorkingDir string
	// NetworkMode is the container's network ("none" unless the build
	// asked for another).
	NetworkMode string
	// Limits are the build's settings for RUN containers.
	Limits RunLimits
	// Output gets the command's stdout and stderr.
	Output io.Writer
	// Started, if set, gets the container's ID once it exists.
	Started func(containerID string)
	// Config is the new image's config; Run appends the layer's diff ID.
	Config dockerspec.DockerOCIImage
}

// MutateOptions describe a step that writes files (COPY, ADD, WORKDIR).
type MutateOptions struct {
	Base   digest.Digest
	Config dockerspec.DockerOCIImage
	// Write changes the root filesystem at root. Paths inside it must be
	// resolved within root: it may hold hostile symlinks.
	Write func(ctx context.Context, root string) error
}

// CommitOptions describe a metadata-only step.
type CommitOptions struct {
	Base   digest.Digest
	Config dockerspec.DockerOCIImage
}

// ExitError is a RUN command that exited non-zero. Backend.Run sets
// Code; the builder adds the Command for docker's message.
type ExitError struct {
	Code    int
	Command string
}

func (e *ExitError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", e.Command, e.Code)
}
