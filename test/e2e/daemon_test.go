package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestDaemonRefusesBadSettings: settings that would be unsafe or
// ambiguous stop the daemon before it creates anything.
func TestDaemonRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"root": "/x", "bogus-key": 1}`), 0o644)
	both := filepath.Join(dir, "both.json")
	os.WriteFile(both, []byte(`{"exec-root": "/x"}`), 0o644)
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{}`), 0o644)
	port := strconv.Itoa(freePort(t))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plain tcp on all addresses", []string{"-H", "tcp://0.0.0.0:" + port, "--config-file", empty}, "refusing to serve the API on a non-loopback address"},
		{"tlsverify without ca", []string{"-H", "tcp://0.0.0.0:" + port, "--tlsverify", "--tlscert", "c", "--tlskey", "k", "--config-file", empty}, "needs --tlscacert"},
		{"bad scheme", []string{"-H", "fd://", "--config-file", empty}, "want unix:///path or tcp://host:port"},
		{"unknown config key", []string{"--config-file", unknown}, `unknown field "bogus-key"`},
		{"key as flag and in file", []string{"--config-file", both, "--exec-root", filepath.Join(dir, "run2")}, "specified both as a flag and in the configuration file: exec-root"},
		{"missing config file", []string{"--config-file", filepath.Join(dir, "none.json")}, "no such file"},
		{"bad log level", []string{"--config-file", empty, "--log-level", "loud"}, "--log-level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			execRoot := filepath.Join(dir, "run-"+strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{"daemon", "--root", filepath.Join(dir, "root"), "--exec-root", execRoot}, tc.args...)
			if tc.name == "key as flag and in file" {
				args = append([]string{"daemon", "--root", filepath.Join(dir, "root")}, tc.args...)
			}
			r := run(t, nil, nil, bins.berth, args...)
			if r.Code != 125 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("want exit 125 and %q: %s", tc.want, r)
			}
			for _, p := range []string{execRoot, filepath.Join(dir, "root")} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s was created", p)
				}
			}
		})
	}
}

// certs writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, into dir (the names docker's
// DOCKER_CERT_PATH wants: ca.pem, cert.pem, key.pem for the client).
func certs(t *testing.T, dir string) (caFile, serverCert, serverKey string) {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, certName, keyName string) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: certName},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return write(certName, "CERTIFICATE", der), write(keyName, "EC PRIVATE KEY", kb)
	}
	caFile = write("ca.pem", "CERTIFICATE", caDER)
	serverCert, serverKey = leaf(2, x509.ExtKeyUsageServerAuth, "server-cert.pem", "server-key.pem")
	leaf(3, x509.ExtKeyUsageClientAuth, "cert.pem", "key.pem")
	return caFile, serverCert, serverKey
}

// TestDaemonTLSVerify serves tcp with client-certificate verification:
// the docker CLI and internal/client with the client certificate get in,
// a client without one does not.
func TestDaemonTLSVerify(t *testing.T) {
	certDir := t.TempDir()
	ca, cert, key := certs(t, certDir)
	port := strconv.Itoa(freePort(t))
	d := StartDaemon(t, DaemonOptions{Args: []string{"-H", "tcp://127.0.0.1:" + port, "--tlsverify",
		"--tlscacert", ca, "--tlscert", cert, "--tlskey", key}})
	host := "tcp://127.0.0.1:" + port

	r := run(t, []string{"DOCKER_HOST=" + host, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + certDir, "DOCKER_CONFIG=" + t.TempDir()}, nil,
		DockerCLI, "version", "--format", "{{.Server.APIVersion}}")
	if r.Code != 0 {
		t.Errorf("docker over TLS: %s", r)
	}

	pool := x509.NewCertPool()
	b, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(b)
	pair, err := tls.LoadX509KeyPair(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := client.New(host, client.WithTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}))
	defer good.Close()
	if _, err := good.Ping(context.Background()); err != nil {
		t.Errorf("client with certificate: %v", err)
	}
	anon, _ := client.New(host, client.WithTLS(&tls.Config{RootCAs: pool}))
	defer anon.Close()
	if _, err := anon.Info(context.Background()); err == nil {
		t.Error("client without a certificate was served")
	}
	t.Setenv("BERTH_HOST", host)
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", certDir)
	fromEnv, err := client.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer fromEnv.Close()
	if _, err := fromEnv.Ping(context.Background()); err != nil {
		t.Errorf("client from the environment: %v", err)
	}
	plain, _ := client.New(host)
	defer plain.Close()
	if _, err := plain.Info(context.Background()); err == nil {
		t.Error("plain HTTP was served on the TLS port")
	}
	_ = d
}

// TestDaemonSocketAndShutdown: the socket is 0660 root:docker (or
// berth), a second daemon on the same exec root is refused without
// harming the first, and SIGTERM ends a following events stream instead
// of waiting the whole grace period for it.
func TestDaemonSocketAndShutdown(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	st := fi.Sys().(*syscall.Stat_t)
	wantGID := uint32(0)
	for _, g := range []string{"docker", "berth"} {
		if grp, err := user.LookupGroup(g); err == nil {
			n, _ := strconv.Atoi(grp.Gid)
			wantGID = uint32(n)
			break
		}
	}
	if st.Uid != 0 || st.Gid != wantGID {
		t.Errorf("socket owned by %d:%d, want 0:%d", st.Uid, st.Gid, wantGID)
	}

	conf := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(conf, nil, 0o644)
	// Same exec root: its pid file names a live daemon.
	r := run(t, nil, nil, bins.berth, "daemon", "--root", t.TempDir(), "--exec-root", d.ExecRoot, "-H", "unix://"+filepath.Join(t.TempDir(), "s.sock"), "--config-file", conf)
	if r.Code != 125 || !strings.Contains(r.Stderr, "is a daemon already running?") {
		t.Errorf("second daemon on the same exec root: %s", r)
	}
	// Same socket from another exec root: the socket is live.
	r = run(t, nil, nil, bins.berth, "daemon", "--root", t.TempDir(), "--exec-root", t.TempDir(), "-H", d.Host, "--config-file", conf)
	if r.Code != 125 || !strings.Contains(r.Stderr, "another daemon is serving it") {
		t.Errorf("second daemon on the same socket: %s", r)
	}
	c := d.Client(t)
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatalf("first daemon hurt by the second: %v", err)
	}

	// A following events stream must not hold up shutdown.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, errc := c.Events(ctx, client.EventsOptions{})
	loadBusybox(t, d)
	select {
	case m := <-msgs:
		if m.Action != "load" {
			t.Errorf("first live event %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live event")
	}
	stopped := make(chan struct{})
	go func() { d.stop(t); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon still running 10s after SIGTERM with an events stream open")
	}
	for range msgs {
	}
	if err := <-errc; err != nil {
		t.Logf("events stream ended with %v", err)
	}
}

// TestDaemonLoopbackTCP: plain tcp is served on loopback (only local
// users reach it), for the docker CLI as for the client.
func TestDaemonLoopbackTCP(t *testing.T) {
	host := "tcp://127.0.0.1:" + strconv.Itoa(freePort(t))
	d := StartDaemon(t, DaemonOptions{Args: []string{"-H", host}})
	r := run(t, []string{"DOCKER_HOST=" + host, "DOCKER_CONFIG=" + t.TempDir()}, nil, DockerCLI, "info", "--format", "{{.DockerRootDir}} {{json .Warnings}}")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, d.Root+" ") || !strings.Contains(r.Stdout, "without encryption") {
		t.Errorf("docker info over tcp: %s", r)
	}
	c, _ := client.New(host)
	defer c.Close()
	if _, err := c.Ping(context.Background()); err != nil {
		t.Errorf("client over tcp: %v", err)
	}
}

// TestDaemonFinishesInFlight: SIGTERM during a load whose body is still
// arriving stops new connections at once but lets the load finish; a
// daemon started again on the same root has the image.
func TestDaemonFinishesInFlight(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	archive, err := os.ReadFile(testutil.Images(t).DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Client(t)
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	type result struct {
		lines []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		lines, err := c.ImageLoad(context.Background(), pr)
		done <- result{lines, err}
	}()
	half := len(archive) / 2
	if _, err := pw.Write(archive[:half]); err != nil {
		t.Fatal(err)
	}
	// Let the request reach the handler, then ask the daemon to stop.
	time.Sleep(200 * time.Millisecond)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(d.Socket); errors.Is(err, os.ErrNotExist) {
			break // no longer accepting
		}
		if time.Now().After(deadline) {
			t.Fatal("socket still there 5s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := pw.Write(archive[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-done
	if res.err != nil || len(res.lines) != 1 || res.lines[0] != "Loaded image: busybox:latest" {
		t.Fatalf("load across SIGTERM = %q, %v", res.lines, res.err)
	}
	d.stop(t)

	d2 := StartDaemon(t, DaemonOptions{Root: d.Root})
	if out := d2.DockerOK(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != "busybox:latest" {
		t.Errorf("after restart: %q", out)
	}
}

// TestDaemonConfigFile: a daemon.json alone (no flags) sets the root,
// exec root, hosts, log level and storage driver.
func TestDaemonConfigFile(t *testing.T) {
	testutil.RequireRoot(t)
	short, err := os.MkdirTemp("", "be2e-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(short)
	dir := t.TempDir()
	root, execRoot := filepath.Join(dir, "root"), filepath.Join(short, "run")
	sock := filepath.Join(short, "cfg.sock")
	conf := filepath.Join(dir, "daemon.json")
	body := `{"root": "` + root + `", "exec-root": "` + execRoot + `", "hosts": ["unix://` + sock + `"],
		"log-level": "warn", "storage-driver": "vfs", "insecure-registries": ["registry.example:5000"]}`
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.berth, "daemon", "--config-file", conf)
	var logb bytes.Buffer
	cmd.Stderr = &logb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("daemon exit: %v\n%s", err, logb.String())
		}
	}()
	c, _ := client.New("unix://" + sock)
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := c.Ping(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no daemon on %s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.DockerRootDir != root || info.Driver != "copy" || info.RegistryConfig.IndexConfigs["registry.example:5000"] == nil {
		t.Errorf("info root=%s driver=%s registries=%v", info.DockerRootDir, info.Driver, info.RegistryConfig.IndexConfigs)
	}
	if _, err := os.Stat(filepath.Join(execRoot, "berth.pid")); err != nil {
		t.Errorf("pid file in the configured exec root: %v", err)
	}
}
