// Package daemon holds the Engine: the one object that owns berth's stores
// (content, images, snapshots, containers, volumes, networks) and offers
// everything berth can do as methods with XOptions/XResult structs.
// `berth daemon` puts these methods behind the Docker Engine API
// (internal/api); the berth CLI is a client of that API.
//
// The Engine only composes and orchestrates: parsing formats, tar files,
// references and garbage collection live in the packages that own those
// nouns (image, tarball, content, unpack, snapshot). It never imports
// net/http.
//
// On disk it owns <root> itself and hands out:
//
//	<root>/content/               content.Store
//	<root>/image/images.db        image.Store
//	<root>/snapshots/             the snapshotter (drivers.Open)
//	<root>/containers/<id>/       container records (container.Store), logs
//	<root>/volumes/<name>/_data   local volumes (volume.Store)
//	<root>/network/               networks and address allocations
//	<root>/build/cache.json       the builder's layer cache (internal/build)
//	<exec-root>/runtime/          the runtime library's state
//	<exec-root>/containers/<id>/  each monitor's socket, pid and exit files
//	<exec-root>/containers/<id>/exec/<exec-id>/
//	                              an exec session: exec.json, start.json
//	                              and exit, the last two written by the
//	                              engine's exec holder ("berth-exec")
//	<exec-root>/netns/            network namespaces of running containers
//
// Only one Engine may use a root at a time: the image database's file
// lock makes a second one wait (and fail after 30 s). New therefore also
// recovers from a crash: it removes unpack working snapshots and collects
// blobs and layer snapshots no image references (a load or pull cut
// short). Whoever writes blobs or layer snapshots for an image not yet
// recorded holds image.Store.Hold until it is.
//
// rmi and image prune ask imageUsers (set by the container side) which
// containers use an image; the image packages never see containers.
package daemon
