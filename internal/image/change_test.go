package image

import (
	"errors"
	"reflect"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		change string
		want   ocispec.ImageConfig
	}{
		{`CMD ["sh", "-c", "echo hi"]`, ocispec.ImageConfig{Cmd: []string{"sh", "-c", "echo hi"}}},
		{`CMD echo hi`, ocispec.ImageConfig{Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{`ENTRYPOINT ["/bin/app"]`, ocispec.ImageConfig{Entrypoint: []string{"/bin/app"}}},
		{`ENV A=1 B="two words"`, ocispec.ImageConfig{Env: []string{"PATH=/bin", "A=1", "B=two words"}}},
		{`ENV PATH /usr/bin`, ocispec.ImageConfig{Env: []string{"PATH=/usr/bin"}}},
		{`WORKDIR /srv`, ocispec.ImageConfig{WorkingDir: "/srv"}},
		{`user 1000:1000`, ocispec.ImageConfig{User: "1000:1000"}},
		{`EXPOSE 80 53/udp`, ocispec.ImageConfig{ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}}}},
		{`LABEL a=b "c d"=e`, ocispec.ImageConfig{Labels: map[string]string{"a": "b", "c d": "e"}}},
		{`VOLUME ["/data", "/logs"]`, ocispec.ImageConfig{Volumes: map[string]struct{}{"/data": {}, "/logs": {}}}},
		{`VOLUME /data`, ocispec.ImageConfig{Volumes: map[string]struct{}{"/data": {}}}},
		{`STOPSIGNAL SIGINT`, ocispec.ImageConfig{StopSignal: "SIGINT"}},
	}
	for _, tt := range tests {
		t.Run(tt.change, func(t *testing.T) {
			c := ocispec.ImageConfig{}
			if tt.want.Env != nil {
				c.Env = []string{"PATH=/bin"}
			}
			if err := ApplyChanges(&c, []string{tt.change}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, tt.want) {
				t.Errorf("got %+v, want %+v", c, tt.want)
			}
		})
	}
	for _, bad := range []string{"RUN rm -rf /", "EXPOSE http", "LABEL novalue", `ENV A="open`, "WORKDIR"} {
		t.Run(bad, func(t *testing.T) {
			if err := ApplyChanges(&ocispec.ImageConfig{}, []string{bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("got %v", err)
			}
		})
	}
}
