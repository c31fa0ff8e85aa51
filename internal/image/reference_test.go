package image

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseReferenceNormalisesAsDocker(t *testing.T) {
	tests := []struct {
		in, want, familiar string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"user/app:v2", "docker.io/user/app:v2", "user/app:v2"},
		{"localhost/app", "localhost/app:latest", "localhost/app:latest"},
		{"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"},
		{"127.0.0.1:5000/a/b/c:tag", "127.0.0.1:5000/a/b/c:tag", "127.0.0.1:5000/a/b/c:tag"},
		{"quay.io/org/img:1", "quay.io/org/img:1", "quay.io/org/img:1"},
		{"[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"},
		{"busybox@sha256:" + hex64, "docker.io/library/busybox@sha256:" + hex64, "busybox@sha256:" + hex64},
		{"busybox:1@sha256:" + hex64, "docker.io/library/busybox:1@sha256:" + hex64, "busybox:1@sha256:" + hex64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseReference(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if n.String() != tt.want {
				t.Errorf("got %s, want %s", n, tt.want)
			}
			if f := Familiar(n.String()); f != tt.familiar {
				t.Errorf("familiar %s, want %s", f, tt.familiar)
			}
		})
	}
}

const hex64 = "4b5b8d2ef0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"

func TestParseReferenceRejects(t *testing.T) {
	for _, in := range []string{"", "Busybox", "busybox:", "a b", "busybox@sha256:abc", ":tag", "-x", "busybox:" + string(make([]byte, 200))} {
		t.Run(in, func(t *testing.T) {
			if _, err := ParseReference(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("got %v, want invalid argument", err)
			}
		})
	}
}

func TestParseTagRefusesDigest(t *testing.T) {
	if _, err := ParseTag("busybox@sha256:" + hex64); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
	tg, err := ParseTag("busybox")
	if err != nil || tg.Tag() != "latest" {
		t.Fatalf("got %v, %v", tg, err)
	}
}

func TestFamiliarRepoTag(t *testing.T) {
	tests := []struct{ in, repo, tag string }{
		{"docker.io/library/busybox:latest", "busybox", "latest"},
		{"localhost:5000/x/y:1", "localhost:5000/x/y", "1"},
		{"docker.io/library/busybox@sha256:" + hex64, "busybox", "sha256:" + hex64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, g := FamiliarRepoTag(tt.in)
			if r != tt.repo || g != tt.tag {
				t.Errorf("got %s %s", r, g)
			}
		})
	}
}
