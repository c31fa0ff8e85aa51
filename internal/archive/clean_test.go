package archive

import "testing"

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a/b", "a/b"}, {"./a/b/", "a/b"}, {"/etc/passwd", "etc/passwd"}, {"../../x", "x"},
		{"a/../../b", "b"}, {"./", ""}, {"..", ""}, {"a//b/./c", "a/b/c"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := clean(tt.in); got != tt.want {
				t.Fatalf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDetectCompression(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want Compression
	}{
		{"gzip", []byte{0x1f, 0x8b, 8, 0}, Gzip},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, Zstd},
		{"tar", []byte("etc/"), Uncompressed},
		{"empty", nil, Uncompressed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DetectCompression(tt.head); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
