// Package monitor is the small per-container process that sits between
// the daemon and a container: the binary re-executed as "berth-monitor",
// in its own session, calling internal/runtime in-process so the
// container's init is its child. It holds the container's stdio (pipes, or
// the pty master with a terminal), writes the json-file log
// (internal/logfile), serves attach, resize and wait on a unix socket, is
// the container's child subreaper, reaps the init, writes the exit status
// atomically, deletes the runtime's state (unless the daemon took that
// over) and exits. It outlives the daemon: a restarted daemon finds it
// again with Connect, and ReadExit tells how a container ended while no
// daemon was there.
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
//	  {"op":"wait","owner":true} on m.sock
//	  (CallerDeletes)
//	  {"start":true} --------------------->
//	                                        runtime Start, reaper, log copiers
//	                      <---------------- {"running":true} (or {"error":…})
//	  return Handle                         … container runs …
//	                                        init reaped, output drained:
//	                                        write exit.json, close attachers;
//	                                        no owner waiting: kill leftovers,
//	                                        runtime Delete; remove m.sock,
//	                                        answer waiters, exit
//
// A wait with "owner" (Handle.WaitOwned; Start registers one before the
// process runs when Config.CallerDeletes is set) takes the runtime's
// delete over: the monitor answers as soon as the exit is known and the
// daemon deletes in-process, sparing a process start on every exit. An
// owner that hangs up before the exit gives the delete back.
//
// With Config.Pool the process exists before Start is called: an idle
// monitor of the Pool, started with _BERTH_MONITOR_WARM instead of a state
// directory, waits on fd 3 for {"stateDir":…}, points its stdout and
// stderr at monitor.log there and goes on as above. Its process start
// (exec, the Go runtime, every linked package's initialisation) is then
// off the path of the container's start.
//
// m.sock takes one JSON request line per connection: {"op":"info"},
// {"op":"wait"} (the answer comes when the container exits), {"op":
// "resize"} and {"op":"attach"}, after whose answer the connection carries
// stdin one way and output the other: raw with a terminal, otherwise in
// docker's multiplexed frames (stream byte, three zeros, big-endian
// length). Detach keys are the client's business (Handle.Attach).
//
// # Memory: the C holder
//
// A Go process per container costs megabytes: measured with the berth
// binary (BenchmarkMonitorMemory, 50 containers running sleep) 3.2 MiB
// PSS and 17 MiB RSS each, nearly all of the PSS private (the heap the
// binary's package initialisers leave, Go's heap and GC metadata, thread
// stacks); 50 of them came to 164 MiB PSS against docker's 270 MiB for
// dockerd, containerd and 50 shims. So the Go monitor only sets the
// container up. Once it exists, the monitor execve()s the binary with
// _BERTH_HOLDER set, and holder.c's constructor, run before the Go runtime
// would start, keeps the container for the rest of its life: same pid (so
// still the init's parent), still the child subreaper (the flag survives
// execve), the same fds (stdio pipes or pty master, m.sock's listener, the
// sync socket), the same protocols. It forks short Go helpers for what
// needs the runtime library: start with poststart hooks
// (_BERTH_MONITOR_OP=start) and, after an exit no owner waited for, delete. Measured: 0.14 MiB PSS and 1.8 MiB RSS per container, 7
// MiB PSS for 50. The holder starts the container itself: it opens the
// runtime's exec fifo for reading (which lets the init exec) and reads the
// init's byte, as the runtime's Start does; only poststart hooks need the
// Go helper. BERTH_MONITOR_GO=1 (or a build without cgo) keeps the Go
// monitor holding, with the same behaviour.
//
//	Go monitor                              C holder (same process)
//	  subreaper, pipes, runtime Create
//	  listen m.sock, clear FD_CLOEXEC
//	  execve(self, _BERTH_HOLDER=1, _BH_*) -->
//	                                          {"pid":N} to the daemon
//	                                          serve m.sock (attach early)
//	                                          {"start"} from the daemon:
//	                                            open exec.fifo, read the init's
//	                                            byte (helper "start" (Go) for
//	                                            poststart hooks); answer
//	                                          copy output to log and attachers,
//	                                          stdin to the container
//	                                          SIGCHLD: reap; the init's status:
//	                                            exit.json, end attaches,
//	                                            no owner: helper "delete" (Go);
//	                                            unlink m.sock, answer waiters
//
// It knows nothing of images, the container record or the API. It owns,
// in Config.StateDir: config.json, m.sock, c.sock (the console socket,
// briefly), monitor.log (its own errors), exit.json; and it writes
// Config.LogPath and its rotations.
package monitor
