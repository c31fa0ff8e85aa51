// Package testutil holds what every tier of berth's tests shares: the root
// gate, the leak checker, and the offline busybox test images.
//
// Integration tests start with RequireRoot(t), which skips with a reason when
// not root and otherwise fails the test if it leaves behind a mount, network
// namespace, link, cgroup, nft table or process that was not there before it
// ran. The snapshot is of the whole machine, so root tests in one binary must
// not run in parallel, and packages run one at a time (go test -p 1).
package testutil
