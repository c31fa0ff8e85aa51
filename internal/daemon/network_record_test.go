package daemon

import (
	"net/netip"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/container"
)

// TestRecordNetworksWithoutManager: what inspect shows of a container
// that is not running, on an engine without networking (the manager's
// side, with IDs of user networks, runs in the e2e tests).
func TestRecordNetworksWithoutManager(t *testing.T) {
	e := &Engine{}
	ip := netip.MustParseAddr("10.1.2.3")
	tests := []struct {
		name, mode string
		endpoints  map[string]*networktypes.EndpointSettings
		want       map[string]string // network → NetworkID ("" for unknown) + "|" + aliases
	}{
		{"default is none without networking", "", nil, map[string]string{"none": pseudoID("none") + "|"}},
		{"host", "host", nil, map[string]string{"host": pseudoID("host") + "|"}},
		{"container mode has none", "container:web", nil, map[string]string{}},
		{"user network with its create settings", "front",
			map[string]*networktypes.EndpointSettings{"front": {Aliases: []string{"api"}, IPAMConfig: &networktypes.EndpointIPAMConfig{IPv4Address: ip}}},
			map[string]string{"front": "|api"}},
		{"connected later", "front",
			map[string]*networktypes.EndpointSettings{"back": {Aliases: []string{"db"}}},
			map[string]string{"front": "|", "back": "|db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &container.Record{HostConfig: &containertypes.HostConfig{NetworkMode: containertypes.NetworkMode(tc.mode)}, Endpoints: tc.endpoints}
			got := e.recordNetworks(r)
			if len(got) != len(tc.want) {
				t.Fatalf("networks %v, want %v", got, tc.want)
			}
			for name, w := range tc.want {
				es := got[name]
				if es == nil {
					t.Fatalf("no %s in %v", name, got)
				}
				s := es.NetworkID + "|"
				for _, a := range es.Aliases {
					s += a
				}
				if s != w {
					t.Errorf("%s: %q, want %q", name, s, w)
				}
			}
			if es := got["front"]; es != nil && tc.endpoints["front"] != nil && es.IPAMConfig.IPv4Address != ip {
				t.Errorf("front's IPAMConfig: %+v", es.IPAMConfig)
			}
		})
	}
}
