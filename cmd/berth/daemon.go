package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/network/ipam"
)

// Defaults of `berth daemon`.
const (
	defaultExecRoot   = "/run/berth"
	defaultConfigFile = "/etc/berth/daemon.json"
	socketName        = "berth.sock"
	defaultBridge     = "berth0"
	// shutdownGrace is how long a stopping daemon waits for requests in
	// flight (a pull, a load) before it closes their connections.
	shutdownGrace = 30 * time.Second
)

// daemonOptions are `berth daemon`'s settings, from flags and the config
// file. The JSON names are the flags' names; docker's plural spellings
// of the list keys ("hosts", "insecure-registries") are accepted too, so
// a docker daemon.json with only these keys works unchanged.
type daemonOptions struct {
	Root               *string  `json:"root"`
	ExecRoot           *string  `json:"exec-root"`
	Hosts              []string `json:"host"`
	HostsDocker        []string `json:"hosts"`
	LogLevel           *string  `json:"log-level"`
	StorageDriver      *string  `json:"storage-driver"`
	Pidfile            *string  `json:"pidfile"`
	InsecureRegistries []string `json:"insecure-registry"`
	InsecureDocker     []string `json:"insecure-registries"`
	TLSVerify          *bool    `json:"tlsverify"`
	TLSCACert          *string  `json:"tlscacert"`
	TLSCert            *string  `json:"tlscert"`
	TLSKey             *string  `json:"tlskey"`
	InsecureTCP        *bool    `json:"insecure-tcp"`
	Bridge             *string  `json:"bridge"`
	BIP                *string  `json:"bip"`
	AddressPools       []struct {
		Base string `json:"base"`
		Size int    `json:"size"`
	} `json:"default-address-pools"`
}

// daemonSettings is the merged, final configuration.
type daemonSettings struct {
	root, execRoot, logLevel, storageDriver, pidfile string
	hosts, insecureRegistries                        []string
	tlsVerify, insecureTCP                           bool
	tlsCACert, tlsCert, tlsKey                       string
	// bridge is the default network's device, bip its subnet (docker's
	// --bip, an address with its prefix length; only the subnet counts).
	bridge, bip string
	// addressPools are --default-address-pool values: base=CIDR,size=N.
	addressPools []string
	// nftTable is the nftables table of the rules (hidden: two daemons
	// on one host, as tests run them, need two).
	nftTable string
}

// newDaemonCommand is `berth daemon`. It reads the root command's
// persistent flags (--root, --storage-driver, --log-level) from the parsed
// command; its default log level is info rather than the CLI's warn.
func newDaemonCommand(_ *globals) *cobra.Command {
	var (
		st         daemonSettings
		configFile string
	)
	cmd := &cobra.Command{
		Use:   "daemon [OPTIONS]",
		Short: "Run the berth daemon: the Docker Engine API on a socket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The root command's persistent flags, read from the parsed
			// command rather than g so the verb works on any root.
			fl := cmd.Flags()
			st.root, _ = fl.GetString("root")
			st.storageDriver, _ = fl.GetString("storage-driver")
			st.logLevel, _ = fl.GetString("log-level")
			if !fl.Changed("log-level") {
				st.logLevel = "info"
			}
			if err := mergeConfigFile(cmd, configFile, &st); err != nil {
				return err
			}
			// The daemon, unlike other verbs, stops cleanly on SIGINT and
			// SIGTERM (main installs no handler: `run` proxies signals).
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, unix.SIGTERM)
			defer stop()
			return runDaemon(ctx, st)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&st.execRoot, "exec-root", defaultExecRoot, "root directory of run-time state: sockets, pid files")
	fl.StringArrayVarP(&st.hosts, "host", "H", nil, "socket to listen on: unix:///path or tcp://host:port (repeatable; default unix://<exec-root>/"+socketName+")")
	fl.StringVar(&configFile, "config-file", defaultConfigFile, "daemon configuration file (JSON; keys are the flags' names)")
	fl.StringVarP(&st.pidfile, "pidfile", "p", "", "path of the pid file (default <exec-root>/berth.pid)")
	fl.StringArrayVar(&st.insecureRegistries, "insecure-registry", nil, "registry (host[:port]) reached over plain HTTP (repeatable)")
	fl.BoolVar(&st.tlsVerify, "tlsverify", false, "serve tcp with TLS and require client certificates signed by --tlscacert")
	fl.StringVar(&st.tlsCACert, "tlscacert", "", "CA certificate clients' certificates must be signed by")
	fl.StringVar(&st.tlsCert, "tlscert", "", "server TLS certificate")
	fl.StringVar(&st.tlsKey, "tlskey", "", "server TLS key")
	fl.StringVar(&st.bridge, "bridge", defaultBridge, "device name of the default bridge network")
	fl.StringVar(&st.bip, "bip", "", "subnet of the default bridge network, as CIDR (default: 172.30.0.0/16, or a free private range if that is in use)")
	fl.StringArrayVar(&st.addressPools, "default-address-pool", nil, "subnets for networks made without one: base=CIDR,size=PREFIXLEN (repeatable; default 172.18-29.0.0/16, then 192.168.x.0/20)")
	fl.StringVar(&st.nftTable, "nft-table", "berth", "nftables table of berth's rules")
	_ = fl.MarkHidden("nft-table")
	fl.BoolVar(&st.insecureTCP, "insecure-tcp", false, "allow tcp without client certificates on a non-loopback address (anyone who reaches it is root)")
	return cmd
}

// mergeConfigFile folds the JSON config file into st. A key also given as
// a flag is an error (as dockerd: which one wins would be a guess); an
// unknown key is an error; the default file may be absent.
func mergeConfigFile(cmd *cobra.Command, path string, st *daemonSettings) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("config-file") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil // an empty file sets nothing
	}
	var o daemonOptions
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var both []string
	setS := func(flag string, v *string, dst *string) {
		if v == nil {
			return
		}
		if cmd.Flags().Changed(flag) {
			both = append(both, flag)
			return
		}
		*dst = *v
	}
	setB := func(flag string, v *bool, dst *bool) {
		if v == nil {
			return
		}
		if cmd.Flags().Changed(flag) {
			both = append(both, flag)
			return
		}
		*dst = *v
	}
	setL := func(flag string, v []string, dst *[]string) {
		if len(v) == 0 {
			return
		}
		if cmd.Flags().Changed(flag) {
			both = append(both, flag)
			return
		}
		*dst = append(*dst, v...)
	}
	setS("root", o.Root, &st.root)
	setS("exec-root", o.ExecRoot, &st.execRoot)
	setS("log-level", o.LogLevel, &st.logLevel)
	setS("storage-driver", o.StorageDriver, &st.storageDriver)
	setS("pidfile", o.Pidfile, &st.pidfile)
	setS("tlscacert", o.TLSCACert, &st.tlsCACert)
	setS("tlscert", o.TLSCert, &st.tlsCert)
	setS("tlskey", o.TLSKey, &st.tlsKey)
	setB("tlsverify", o.TLSVerify, &st.tlsVerify)
	setB("insecure-tcp", o.InsecureTCP, &st.insecureTCP)
	setS("bridge", o.Bridge, &st.bridge)
	setS("bip", o.BIP, &st.bip)
	var pools []string
	for _, p := range o.AddressPools {
		pools = append(pools, fmt.Sprintf("base=%s,size=%d", p.Base, p.Size))
	}
	setL("default-address-pool", pools, &st.addressPools)
	setL("host", append(o.Hosts, o.HostsDocker...), &st.hosts)
	setL("insecure-registry", append(o.InsecureRegistries, o.InsecureDocker...), &st.insecureRegistries)
	if len(both) > 0 {
		return fmt.Errorf("config file %s: the following directives are specified both as a flag and in the configuration file: %s", path, strings.Join(both, ", "))
	}
	return nil
}

// runDaemon serves until ctx ends (SIGINT or SIGTERM), then stops
// accepting, lets requests in flight finish (up to shutdownGrace), and
// closes the Engine.
func runDaemon(ctx context.Context, st daemonSettings) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(st.logLevel))); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", st.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(logger)
	ctx = log.WithLogger(ctx, logger)

	if len(st.hosts) == 0 {
		st.hosts = []string{"unix://" + filepath.Join(st.execRoot, socketName)}
	}
	if st.pidfile == "" {
		st.pidfile = filepath.Join(st.execRoot, "berth.pid")
	}
	// Check every address before touching anything, so a refused one
	// leaves no socket, pid file or open store behind.
	addrs := make([]*url.URL, 0, len(st.hosts))
	for _, h := range st.hosts {
		u, err := parseHost(h)
		if err != nil {
			return err
		}
		if u.Scheme == "tcp" {
			if err := checkTCP(u, st); err != nil {
				return err
			}
		}
		addrs = append(addrs, u)
	}
	var bip netip.Prefix
	if st.bip != "" {
		p, err := netip.ParsePrefix(st.bip)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("--bip %q: want an IPv4 address with its prefix length, e.g. 172.30.0.1/16", st.bip)
		}
		bip = p.Masked()
	}
	pools, err := addressPools(st.addressPools)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(st.execRoot, 0o711); err != nil {
		return fmt.Errorf("exec root: %w", err)
	}
	if err := writePidfile(st.pidfile); err != nil {
		return err
	}
	defer os.Remove(st.pidfile)

	e, err := daemon.New(ctx, daemon.Config{Root: st.root, StorageDriver: st.storageDriver, InsecureRegistries: st.insecureRegistries})
	if err != nil {
		return err
	}
	defer func() {
		if err := e.Close(); err != nil {
			log.From(ctx).Warn("daemon: close engine", log.KeyErr, err)
		}
	}()
	var warnings []string
	for _, u := range addrs {
		if u.Scheme == "tcp" && !st.tlsVerify && st.tlsCert == "" {
			warnings = append(warnings, fmt.Sprintf("WARNING: API is accessible on http://%s without encryption.", u.Host))
		}
	}
	e.ConfigureDaemon(daemon.DaemonConfig{ExecRoot: st.execRoot, Debug: lvl <= slog.LevelDebug,
		InsecureRegistries: st.insecureRegistries, Warnings: warnings})
	// Containers: open their stores and find the ones still running
	// (live restore). At exit only the engine's watchers stop; the
	// containers keep running for the next daemon.
	if err := e.InitContainers(ctx, daemon.ContainerConfig{ExecRoot: st.execRoot}); err != nil {
		return err
	}
	defer e.ShutdownContainers()
	// Networks: the default bridge, the user networks on disk, and
	// cleanup of what dead containers left (after a crash). At exit only
	// the manager's goroutines stop; bridges, rules and the endpoints of
	// running containers stay for the next daemon.
	if err := e.InitNetworks(ctx, daemon.NetworkConfig{ExecRoot: st.execRoot, DefaultBridge: st.bridge, DefaultSubnet: bip, AddressPools: pools, Table: st.nftTable}); err != nil {
		return err
	}
	defer e.ShutdownNetworks(context.WithoutCancel(ctx))
	// Healthchecks of running containers, as execs at their intervals.
	stopHealth := e.StartHealthchecks(ctx)
	defer stopHealth()
	// Volume mount and unmount events, as containers start and die.
	stopVolumeEvents := e.StartVolumeEvents(ctx)
	defer stopVolumeEvents()

	// The builder: its cache, and the working snapshots a crash left.
	builder, err := daemon.NewBuilder(ctx, e)
	if err != nil {
		return err
	}

	srv := api.New(api.Config{Backend: api.Backend{Images: e, System: e, Containers: containerAPI{e}, Exec: execAPI{e}, Networks: e, Volumes: e, Build: builder}})
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		// Idle keep-alive connections go after a while; streams and
		// hijacked sessions are not idle and are not affected.
		IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(srv.StopStreams)

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for _, u := range addrs {
		l, err := listen(ctx, u, st)
		if err != nil {
			closeAll()
			return err
		}
		listeners = append(listeners, l)
	}
	served := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { served <- hs.Serve(l) }()
		log.From(ctx).Info("daemon: listening", "addr", l.Addr().Network()+"://"+l.Addr().String())
	}
	log.From(ctx).Info("daemon: up", "root", e.Root(), "storage-driver", e.StorageDriver(), "api", api.MaxAPIVersion)

	var serveErr error
	select {
	case <-ctx.Done():
		log.From(ctx).Info("daemon: shutting down")
	case serveErr = <-served:
		// A listener failed: stop serving on the others too, and exit
		// non-zero so a supervisor restarts us.
		log.From(ctx).Error("daemon: serve", log.KeyErr, serveErr)
		serveErr = fmt.Errorf("serve: %w", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.From(ctx).Warn("daemon: requests still running at the end of the grace period were cut off", log.KeyErr, err)
		hs.Close()
	}
	for _, u := range addrs {
		if u.Scheme == "unix" {
			os.Remove(u.Path)
		}
	}
	log.From(ctx).Info("daemon: stopped")
	return serveErr
}

// parseHost reads one -H value: unix:///path, tcp://host:port (also
// docker's bare host:port and a bare path).
func parseHost(h string) (*url.URL, error) {
	switch {
	case strings.HasPrefix(h, "/"):
		h = "unix://" + h
	case !strings.Contains(h, "://"):
		h = "tcp://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return nil, fmt.Errorf("-H %s: %w", h, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("-H %s: no socket path", h)
		}
	case "tcp":
		if u.Port() == "" {
			return nil, fmt.Errorf("-H %s: no port", h)
		}
	default:
		return nil, fmt.Errorf("-H %s: want unix:///path or tcp://host:port", h)
	}
	return u, nil
}

// checkTCP refuses a tcp address anyone could use as root: one that is
// not loopback needs client-certificate verification, unless the user
// insists with --insecure-tcp.
func checkTCP(u *url.URL, st daemonSettings) error {
	tlsOn := st.tlsVerify || st.tlsCert != ""
	if tlsOn && (st.tlsCert == "" || st.tlsKey == "") {
		return fmt.Errorf("-H %s: TLS needs --tlscert and --tlskey", u)
	}
	if st.tlsVerify && st.tlsCACert == "" {
		return fmt.Errorf("-H %s: --tlsverify needs --tlscacert to check client certificates against", u)
	}
	if st.tlsVerify || st.insecureTCP {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-H %s: refusing to serve the API on a non-loopback address without --tlsverify: anyone who reaches it controls the host as root (use --tlsverify with client certificates, or --insecure-tcp to accept that)", u)
}

func listen(ctx context.Context, u *url.URL, st daemonSettings) (net.Listener, error) {
	if u.Scheme == "unix" {
		return listenUnix(ctx, u.Path)
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", u, err)
	}
	if !st.tlsVerify && st.tlsCert == "" {
		return l, nil
	}
	cfg, err := serverTLS(st)
	if err != nil {
		l.Close()
		return nil, err
	}
	return tls.NewListener(l, cfg), nil
}

func serverTLS(st daemonSettings) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(st.tlsCert, st.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if st.tlsVerify {
		pem, err := os.ReadFile(st.tlsCACert)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: %s holds no PEM certificate", st.tlsCACert)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// listenUnix listens on path, mode 0660, owned by root and group docker
// (or berth) when that group exists, so its members may use it as
// docker's do. A stale socket of a dead daemon is replaced; a live one is
// an error. Between bind and chmod the socket has 0777&^umask; with the
// usual 022 umask only root may connect (connecting needs write
// permission), so the window opens nothing.
func listenUnix(ctx context.Context, path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another daemon is serving it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen %s: remove stale socket: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	// The listener removes the socket file when closed.
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	gid := 0
	for _, name := range []string{"docker", "berth"} {
		if g, err := user.LookupGroup(name); err == nil {
			if n, err := strconv.Atoi(g.Gid); err == nil {
				gid = n
				break
			}
		}
	}
	if err := os.Chown(path, 0, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	log.From(ctx).Debug("daemon: socket", log.KeyPath, path, "gid", gid)
	return l, nil
}

// writePidfile writes our pid, refusing if the file names a live process
// (another daemon on the same exec root).
func writePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() {
			if err := unix.Kill(pid, 0); err == nil || errors.Is(err, unix.EPERM) {
				if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.Contains(string(comm), "berth") {
					return fmt.Errorf("pid file %s names running process %d: is a daemon already running?", path, pid)
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// addressPools reads --default-address-pool values (docker's
// base=CIDR,size=N) into the subnets they are cut into, in order.
func addressPools(specs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, spec := range specs {
		var base netip.Prefix
		size := -1
		for _, kv := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			var err error
			switch k {
			case "base":
				base, err = netip.ParsePrefix(v)
			case "size":
				size, err = strconv.Atoi(v)
			default:
				err = fmt.Errorf("unknown key %q", k)
			}
			if err != nil {
				return nil, fmt.Errorf("--default-address-pool %q: %v (want base=CIDR,size=N)", spec, err)
			}
		}
		if !base.IsValid() || size < 0 {
			return nil, fmt.Errorf("--default-address-pool %q: want base=CIDR,size=N", spec)
		}
		subnets, err := ipam.SplitPool(base, size)
		if err != nil {
			return nil, fmt.Errorf("--default-address-pool %q: %w", spec, err)
		}
		out = append(out, subnets...)
	}
	return out, nil
}
