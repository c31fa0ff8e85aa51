package daemon

import (
	"context"
	"testing"
	"time"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestStatsNetworkCounters: a container that pings its gateway shows the
// packets in its stats' networks (eth0's counters, read in its
// namespace); one on network none has no networks at all, as docker's.
func TestStatsNetworkCounters(t *testing.T) {
	testutil.RequireRoot(t)
	e, _ := netCtrEngine(t)
	ctx := context.Background()
	id := create(t, e, "pinger", containertypes.Config{Cmd: []string{"sh", "-c",
		"ping -c5 -i0.2 -s1000 $(ip route | awk '/default/{print $3}') && touch /tmp/done; sleep 100"}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	var got containertypes.NetworkStats
	deadline := time.Now().Add(10 * time.Second)
	for {
		ch, err := e.ContainerStats(ctx, id, ContainerStatsOptions{OneShot: true})
		if err != nil {
			t.Fatal(err)
		}
		s := <-ch
		for range ch {
		}
		got = s.Networks["eth0"]
		// five echo requests and replies of 1000 bytes of payload each way
		if got.TxBytes >= 5*1000 && got.RxBytes >= 5*1000 {
			if len(s.Networks) != 1 {
				t.Errorf("networks %v: want eth0 alone (no lo)", s.Networks)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eth0 after 5 pings of 1000 bytes: %+v (networks %v)", got, s.Networks)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.TxPackets < 5 || got.RxPackets < 5 || got.RxErrors != 0 || got.TxErrors != 0 {
		t.Errorf("eth0 counters %+v", got)
	}

	none := create(t, e, "offline", containertypes.Config{Cmd: []string{"sleep", "100"}}, &containertypes.HostConfig{NetworkMode: "none"})
	if err := e.ContainerStart(ctx, none); err != nil {
		t.Fatal(err)
	}
	ch, err := e.ContainerStats(ctx, none, ContainerStatsOptions{OneShot: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := <-ch; s.Networks != nil {
		t.Errorf("network none: networks %v", s.Networks)
	}
	for range ch {
	}
}
