package cgroups

import (
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	testutil.Main(m)
}
