// Package testimage builds berth's offline test image from Debian's
// busybox-static binary, in the forms the tests and the demo consume:
//
//	<out>/bundle/             an OCI runtime bundle: config.json + rootfs/
//	<out>/oci/                an OCI image layout (gzip layers)
//	<out>/busybox.tar         a docker-archive, as `docker save` writes it
//
// The image has two layers. The second deletes a file of the first
// (/etc/old.conf, a .wh. whiteout) and replaces a directory (/opt/replaced,
// an opaque whiteout), so layer handling is tested on real whiteouts. The
// rootfs in the bundle is the two layers applied, written directly by this
// package, so tests of berth's own layer code compare against an
// independent answer. It knows nothing of berth's stores.
package testimage
