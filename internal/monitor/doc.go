// Package monitor is the small per-container process that sits between
// the daemon and a container: the binary re-executed as "berth-monitor",
// in its own session, calling internal/runtime in-process so the
// container's init is its child. It holds the container's stdio (pipes, or
// the pty master with a terminal), writes the json-file log
// (internal/logfile), serves attach, resize and wait on a unix socket, is
// the container's child subreaper, reaps the init, writes the exit status
// atomically, deletes the runtime's state and exits. It outlives the
// daemon: a restarted daemon finds it again with Connect, and ReadExit
// tells how a container ended while no daemon was there.
//
// The daemon side (Start, Connect, Handle) and the monitor side (Main) are
// both here; they talk over two channels:
//
//	daemon (Start)                        monitor (Main)
//	  write <state>/config.json
//	  exec berth-monitor, setsid,
//	  fd 3 = sync socketpair ------------->
//	                                        subreaper, pipes or console socket
//	                                        runtime Create (init is our child)
//	                                        listen <state>/m.sock
//	                      <---------------- {"pid":N}  (or {"error":…}: exit)
//	  Config.Created(h) (attach early)
//	  {"start":true} --------------------->
//	                                        runtime Start, reaper, log copiers
//	                      <---------------- {"running":true} (or {"error":…})
//	  return Handle                         … container runs …
//	                                        init reaped: write exit.json,
//	                                        answer waiters, close attachers,
//	                                        kill leftovers, runtime Delete, exit
//
// m.sock takes one JSON request line per connection: {"op":"info"},
// {"op":"wait"} (the answer comes when the container exits), {"op":
// "resize"} and {"op":"attach"}, after whose answer the connection carries
// stdin one way and output the other: raw with a terminal, otherwise in
// docker's multiplexed frames (stream byte, three zeros, big-endian
// length). Detach keys are the client's business (Handle.Attach).
//
// # Memory
//
// A monitor is a whole Go process: measured here (BenchmarkMonitorMemory,
// 50 containers running sleep, the berth binary as the monitor) about
// 3.2 MiB PSS and 17 MiB RSS each, nearly all of the PSS private: the
// heap the binary's package initialisers leave (~0.7 MiB, regexps and
// tables of packages the monitor never uses), the Go heap and GC
// metadata, and a few thread stacks. The text is shared. GOGC=50,
// GOMAXPROCS=1 and a FreeOSMemory after the start are set; they do not
// change the floor. A slimmer binary (the test binary, with only this
// package's imports) comes to ~2 MiB PSS. Reaching docker's 270 MiB / 5
// for 50 containers needs a holder that is not a Go process (see the
// report of the monitor's author: a C constructor, as nsenter's, that
// holds the fds and forks the Go part only to create and to delete).
//
// It knows nothing of images, the container record or the API. It owns,
// in Config.StateDir: config.json, m.sock, c.sock (the console socket,
// briefly), monitor.log (its own errors), exit.json; and it writes
// Config.LogPath and its rotations.
package monitor
