package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/runtime/defaults"
)

// Version changes whenever the image's content changes, so stale outputs
// are rebuilt.
const Version = "4"

// Ref is the name the image carries in its archives.
const Ref = "busybox:latest"

// Label is the label set in the image config.
const Label = "org.berth.test"

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// Paths names the outputs of Build under one directory.
type Paths struct {
	Dir           string
	Bundle        string // OCI runtime bundle directory
	Rootfs        string // Bundle/rootfs
	OCILayout     string // OCI image layout directory
	DockerArchive string // docker-archive tarball
}

// PathsIn returns where Build writes its outputs under dir.
func PathsIn(dir string) Paths {
	return Paths{
		Dir:           dir,
		Bundle:        filepath.Join(dir, "bundle"),
		Rootfs:        filepath.Join(dir, "bundle", "rootfs"),
		OCILayout:     filepath.Join(dir, "oci"),
		DockerArchive: filepath.Join(dir, "busybox.tar"),
	}
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one item of a layer; a layer is a list of them in tar order.
type entry struct {
	name     string // relative, no leading slash; a trailing slash marks a dir
	mode     int64
	body     string
	linkname string // symlink target
	fromFile string // host file to copy the body from
}

func layers(applets []string) [][]entry {
	base := []entry{
		{name: "bin/", mode: 0o755}, {name: "dev/", mode: 0o755}, {name: "etc/", mode: 0o755},
		{name: "home/", mode: 0o755}, {name: "proc/", mode: 0o555}, {name: "root/", mode: 0o700},
		{name: "sys/", mode: 0o555}, {name: "tmp/", mode: 0o1777}, {name: "usr/", mode: 0o755},
		{name: "usr/bin/", mode: 0o755}, {name: "var/", mode: 0o755}, {name: "opt/", mode: 0o755},
		{name: "opt/replaced/", mode: 0o755},
		{name: "bin/busybox", mode: 0o755, fromFile: BusyboxPath},
		{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"},
		{name: "etc/group", mode: 0o644, body: "root:x:0:\nnobody:x:65534:\n"},
		{name: "etc/old.conf", mode: 0o644, body: "deleted by the second layer\n"},
		{name: "opt/replaced/old.txt", mode: 0o644, body: "hidden by an opaque whiteout\n"},
		{name: "opt/replaced/sub/", mode: 0o755},
		{name: "opt/replaced/sub/deep.txt", mode: 0o644, body: "hidden too\n"},
	}
	for _, a := range applets {
		base = append(base, entry{name: "bin/" + a, mode: 0o777, linkname: "busybox"})
	}
	top := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/.wh.old.conf", mode: 0o644},
		{name: "etc/motd", mode: 0o644, body: "berth test image\n"},
		{name: "opt/", mode: 0o755},
		{name: "opt/replaced/", mode: 0o755},
		{name: "opt/replaced/.wh..wh..opq", mode: 0o644},
		{name: "opt/replaced/new.txt", mode: 0o644, body: "from the second layer\n"},
	}
	return [][]entry{base, top}
}

// Applets lists busybox's applets, minus the ones that would clash with
// the directory layout.
func Applets() ([]string, error) {
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets (install Debian's busybox-static): %w", err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.ContainsAny(a, "/[") {
			applets = append(applets, a)
		}
	}
	applets = append(applets, "[", "[[")
	sort.Strings(applets)
	return applets, nil
}

// Build writes all forms of the test image under dir, replacing what is
// there. It writes into a sibling temporary directory and renames it into
// place, so a crash never leaves a half-built image under dir.
func Build(dir string) (Paths, error) {
	applets, err := Applets()
	if err != nil {
		return Paths{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".testimage-")
	if err != nil {
		return Paths{}, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Paths{}, err
	}
	p := PathsIn(tmp)
	ls := layers(applets)

	var tars [][]byte
	for _, l := range ls {
		b, err := layerTar(l)
		if err != nil {
			return Paths{}, err
		}
		tars = append(tars, b)
	}
	cfg, err := imageConfig(tars)
	if err != nil {
		return Paths{}, err
	}
	if err := writeOCILayout(p.OCILayout, tars, cfg); err != nil {
		return Paths{}, fmt.Errorf("write oci layout: %w", err)
	}
	if err := writeDockerArchive(p.DockerArchive, tars, cfg); err != nil {
		return Paths{}, fmt.Errorf("write docker archive: %w", err)
	}
	if err := writeRootfs(p.Rootfs, ls); err != nil {
		return Paths{}, fmt.Errorf("write rootfs: %w", err)
	}
	if err := writeBundleConfig(p.Bundle); err != nil {
		return Paths{}, fmt.Errorf("write bundle config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".version"), []byte(Version), 0o644); err != nil {
		return Paths{}, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return Paths{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return Paths{}, err
	}
	return PathsIn(dir), nil
}

// Current reports whether dir holds outputs of this Version of Build.
func Current(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ".version"))
	return err == nil && string(b) == Version
}

func layerTar(l []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range l {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		var body []byte
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag = tar.TypeDir
		case e.linkname != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.linkname
		case e.fromFile != "":
			b, err := os.ReadFile(e.fromFile)
			if err != nil {
				return nil, err
			}
			body = b
		default:
			body = []byte(e.body)
		}
		if h.Typeflag == 0 {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func imageConfig(tars [][]byte) ([]byte, error) {
	created := epoch
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config: ocispec.ImageConfig{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "BERTH_TEST=1"},
			Cmd:        []string{"sh"},
			WorkingDir: "/",
			Labels:     map[string]string{Label: "busybox"},
		},
		RootFS: ocispec.RootFS{Type: "layers"},
		History: []ocispec.History{
			{Created: &created, CreatedBy: "testimage: busybox-static with applet links"},
			{Created: &created, CreatedBy: "testimage: whiteout /etc/old.conf, replace /opt/replaced"},
		},
	}
	for _, t := range tars {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(t))
	}
	return json.Marshal(cfg)
}

func gz(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf) // header without name or time: deterministic
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeBlob(layout string, b []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	p := filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(b))}, os.WriteFile(p, b, 0o644)
}

func writeOCILayout(dir string, tars [][]byte, cfg []byte) error {
	man := ocispec.Manifest{Versioned: imgspec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	c, err := writeBlob(dir, cfg)
	if err != nil {
		return err
	}
	c.MediaType = ocispec.MediaTypeImageConfig
	man.Config = c
	for _, t := range tars {
		z, err := gz(t)
		if err != nil {
			return err
		}
		d, err := writeBlob(dir, z)
		if err != nil {
			return err
		}
		d.MediaType = ocispec.MediaTypeImageLayerGzip
		man.Layers = append(man.Layers, d)
	}
	mb, err := json.Marshal(man)
	if err != nil {
		return err
	}
	md, err := writeBlob(dir, mb)
	if err != nil {
		return err
	}
	md.MediaType = ocispec.MediaTypeImageManifest
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"}
	md.Platform = &ocispec.Platform{Architecture: "amd64", OS: "linux"}
	idx, err := json.Marshal(ocispec.Index{Versioned: imgspec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// writeDockerArchive writes the layout `docker save` uses: manifest.json,
// repositories, the config as <hex>.json and each layer as <id>/layer.tar.
func writeDockerArchive(path string, tars [][]byte, cfg []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	var layerNames []string
	parent := ""
	for _, t := range tars {
		// A v1-style layer id chained over the parent, as docker's are.
		h := sha256.Sum256([]byte(parent + digest.FromBytes(t).String()))
		id := hex.EncodeToString(h[:])
		if err := tw.WriteHeader(&tar.Header{Name: id + "/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
		if err := add(id+"/VERSION", []byte("1.0")); err != nil {
			return err
		}
		if err := add(id+"/layer.tar", t); err != nil {
			return err
		}
		layerNames = append(layerNames, id+"/layer.tar")
		parent = id
	}
	if err := add(cfgName, cfg); err != nil {
		return err
	}
	repo, tag, _ := strings.Cut(Ref, ":")
	man, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{Ref}, "Layers": layerNames}})
	if err != nil {
		return err
	}
	if err := add("manifest.json", man); err != nil {
		return err
	}
	repos, err := json.Marshal(map[string]map[string]string{repo: {tag: parent}})
	if err != nil {
		return err
	}
	if err := add("repositories", repos); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// writeRootfs applies the layers' meaning directly: the whited-out file and
// the opaque directory's old content are simply not written.
func writeRootfs(root string, ls [][]entry) error {
	skip := map[string]bool{"etc/old.conf": true, "opt/replaced/old.txt": true, "opt/replaced/sub/": true, "opt/replaced/sub/deep.txt": true}
	for _, l := range ls {
		for _, e := range l {
			if skip[e.name] || strings.Contains(e.name, ".wh.") {
				continue
			}
			p := filepath.Join(root, e.name)
			switch {
			case strings.HasSuffix(e.name, "/"):
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
				if err := os.Chmod(p, os.FileMode(e.mode&0o777)|modeExtra(e.mode)); err != nil {
					return err
				}
			case e.linkname != "":
				if err := os.Symlink(e.linkname, p); err != nil {
					return err
				}
			default:
				body := []byte(e.body)
				if e.fromFile != "" {
					src, err := os.Open(e.fromFile)
					if err != nil {
						return err
					}
					body, err = io.ReadAll(src)
					src.Close()
					if err != nil {
						return err
					}
				}
				if err := os.WriteFile(p, body, os.FileMode(e.mode)); err != nil {
					return err
				}
				if err := os.Chmod(p, os.FileMode(e.mode)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func modeExtra(m int64) os.FileMode {
	if m&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}

// writeBundleConfig writes a config.json like `runc spec` does, with a
// read-only root (the rootfs is shared by tests) and a process that prints
// one line, for the demo.
func writeBundleConfig(bundle string) error {
	s := defaults.Spec(false, 0, 0)
	s.Hostname = "berth"
	s.Process.Terminal = false
	s.Process.Args = []string{"/bin/sh", "-c", `echo "hello from a berth container: hostname $(hostname), pid $$, uid $(id -u)"`}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
}
