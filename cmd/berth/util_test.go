package main

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

func topChainID(diffIDs []string) string {
	var ds []digest.Digest
	for _, d := range diffIDs {
		ds = append(ds, digest.Digest(d))
	}
	return identity.ChainID(ds).String()
}

func TestHumanSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{0, "0B"}, {999, "999B"}, {1000, "1kB"}, {2139136, "2.14MB"}, {4_262_000_000, "4.26GB"}}
	for _, tt := range tests {
		if got := humanSize(tt.n); got != tt.want {
			t.Errorf("humanSize(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}
