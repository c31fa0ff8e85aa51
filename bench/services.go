package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// service is a background process the bench started and must stop.
type service struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func startService(name, logFile string, args ...string) (*service, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &service{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	return s, nil
}

// stop sends SIGTERM, and SIGKILL after 15 s.
func (s *service) stop() {
	_ = s.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// waitFor polls check until it succeeds, the service dies, or 30 s pass.
func (s *service) waitFor(check func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case werr := <-s.done:
			s.done <- werr
			return fmt.Errorf("%s exited: %v", s.name, werr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %w", s.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dial(network, addr string) error {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// registry is Debian's docker-registry on 127.0.0.1 with its own storage.
type registry struct {
	host string
	dir  string
	svc  *service
}

// startRegistry starts a registry on host ("" picks a free port).
func startRegistry(dir, host string) (*registry, error) {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		return nil, errors.New("docker-registry not installed (apt-get install docker-registry)")
	}
	if host == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		host = "127.0.0.1:" + strconv.Itoa(port)
	}
	r := &registry{host: host, dir: dir}
	var err error
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "storage"), r.host)
	confFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if r.svc, err = startService("docker-registry", filepath.Join(dir, "registry.log"), "docker-registry", "serve", confFile); err != nil {
		return nil, err
	}
	if err := r.svc.waitFor(func() error { return dial("tcp", r.host) }); err != nil {
		r.svc.stop()
		return nil, err
	}
	return r, nil
}

// wipe empties the registry's storage, so the next push is cold.
func (r *registry) wipe() error {
	r.svc.stop()
	if err := os.RemoveAll(filepath.Join(r.dir, "storage")); err != nil {
		return err
	}
	nr, err := startRegistry(r.dir, r.host) // same address: references stay valid
	if err != nil {
		return err
	}
	*r = *nr
	return nil
}

// dockerd is Debian's docker.io engine (dockerd + containerd) on roots and
// sockets of its own. Its default bridge gets a subnet of the bench's and
// no iptables rules at all (no NAT, no forwarding changes): containers
// reach only each other and the host.
type dockerd struct {
	sock       string
	containerd *service
	dockerd    *service
}

func startDockerd(dir string) (*dockerd, error) {
	for _, bin := range []string{"dockerd", "containerd", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not installed (apt-get install docker.io)", bin)
		}
	}
	ctrdSock := filepath.Join(dir, "containerd", "containerd.sock")
	conf := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "containerd", "root"), filepath.Join(dir, "containerd", "state"), ctrdSock)
	if err := os.MkdirAll(filepath.Join(dir, "containerd"), 0o755); err != nil {
		return nil, err
	}
	confFile := filepath.Join(dir, "containerd", "config.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	d := &dockerd{sock: filepath.Join(dir, "docker.sock")}
	var err error
	if d.containerd, err = startService("containerd", filepath.Join(dir, "containerd.log"), "containerd", "--config", confFile); err != nil {
		return nil, err
	}
	if err := d.containerd.waitFor(func() error { return dial("unix", ctrdSock) }); err != nil {
		d.containerd.stop()
		return nil, err
	}
	d.dockerd, err = startService("dockerd", filepath.Join(dir, "dockerd.log"), "dockerd",
		"--containerd", ctrdSock, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", "unix://"+d.sock,
		// Without iptables, published ports go through docker's userland
		// proxy, which is also docker's path for traffic to 127.0.0.1.
		"--bip", dockerBIP, "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--storage-driver=overlay2", "--log-level=error")
	if err != nil {
		d.containerd.stop()
		return nil, err
	}
	if err := d.dockerd.waitFor(func() error { return d.cli("version") }); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// cli runs the docker CLI against this dockerd; "$(all)" stands for every
// container's id, as with the berth CLI.
func (d *dockerd) cli(args ...string) error {
	return expandAll(args, d.ids, func(a []string) error {
		out, err := exec.Command("docker", append([]string{"-H", "unix://" + d.sock}, a...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("docker %v: %w: %s", a, err, out)
		}
		return nil
	})
}

func (d *dockerd) ids() ([]string, error) {
	out, err := exec.Command("docker", "-H", "unix://"+d.sock, "ps", "-aq").Output()
	return strings.Fields(string(out)), err
}

const dockerBIP = "10.213.2.1/24"

func (d *dockerd) stop() {
	d.dockerd.stop()
	d.containerd.stop()
	// dockerd leaves its bridge and parent cgroup behind.
	_ = run("ip", "link", "del", dockerBr)
	removeCgroupDir("docker")
}
