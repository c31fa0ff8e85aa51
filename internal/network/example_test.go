package network_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/portmap"
)

// A container's networking as the engine drives it: a namespace ready
// while the rootfs is prepared, an attachment with a published port, and
// its release when the container is removed.
func ExampleManager() {
	ctx := context.Background()
	m, err := network.New(ctx, network.Config{Root: "/var/lib/berth/network", ExecRoot: "/run/berth"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close() // containers keep their networking while the daemon is down
	// At start, once: whatever belongs to containers that no longer run.
	_, _ = m.Cleanup(ctx, func(id string) bool { return false })

	id := "3f4e…"                         // the container's ID
	netnsPath, err := m.NewNetns(ctx, id) // → the spec's network namespace path
	if err != nil {
		fmt.Println(err)
		return
	}
	ports, _ := portmap.Parse("127.0.0.1:8080:80/tcp")
	res, err := m.Attach(ctx, network.AttachOptions{ContainerID: id, Name: "web", Ports: ports,
		DNS: []string{netip.MustParseAddr("192.0.2.53").String()}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Bind-mount res.HostsPath, res.HostnamePath and res.ResolvConfPath
	// into the container; start it in netnsPath.
	fmt.Println(netnsPath, res.Endpoint.IPv4, res.Endpoint.Ports[0])

	// When the container is removed (or has stopped, as docker does):
	_ = m.Release(ctx, id)
}
