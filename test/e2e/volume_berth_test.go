package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// TestBerthCLIVolumes drives berth volume's verbs and flags against a
// daemon, as TestDockerCLIVolumes drives docker's.
func TestBerthCLIVolumes(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	loadBusybox(t, d)
	cleanVolumes(t, d)
	expect := func(r Result, code int, out string) {
		t.Helper()
		if r.Code != code || !strings.Contains(r.Stdout+r.Stderr, out) {
			t.Fatalf("want exit %d and %q, got %s", code, out, r)
		}
	}
	expect(d.Berth(t, "volume", "create", "--label", "tier=db", "-d", "local", "pgdata"), 0, "pgdata")
	expect(d.Berth(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "fast"), 0, "fast")
	anon := d.Berth(t, "volume", "create")
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(anon.Stdout) {
		t.Fatalf("anonymous: %s", anon)
	}
	expect(d.Berth(t, "volume", "create", "-d", "nfs", "x1"), 125, `volume driver "nfs"`)
	expect(d.Berth(t, "volume", "create", "-o", "novalue", "x1"), 125, "want KEY=VALUE")
	expect(d.Berth(t, "volume", "create", "-x"), 125, "unknown shorthand flag")

	ls := d.Berth(t, "volume", "ls")
	if ls.Code != 0 || !regexp.MustCompile(`(?m)^DRIVER\s+VOLUME NAME\n`).MatchString(ls.Stdout) || !regexp.MustCompile(`(?m)^local\s+pgdata$`).MatchString(ls.Stdout) {
		t.Fatalf("ls: %s", ls)
	}
	expect(d.Berth(t, "volume", "ls", "-q", "-f", "label=tier=db"), 0, "pgdata\n")
	expect(d.Berth(t, "volume", "ls", "--format", "{{.Name}}:{{.Labels}}", "--filter", "name=pg"), 0, "pgdata:tier=db")
	expect(d.Berth(t, "volume", "ls", "--format", "json", "-f", "name=fast"), 0, `"Name":"fast"`)
	expect(d.Berth(t, "volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Options.type}}", "fast"), 0, "fast local tmpfs")
	expect(d.Berth(t, "volume", "inspect", "pgdata"), 0, `"Mountpoint": "`+d.Root+`/volumes/pgdata/_data"`)
	expect(d.Berth(t, "volume", "inspect", "nosuch"), 1, "Error response from daemon: get nosuch: no such volume")

	// A container keeps the volume: rm refuses, system df counts it.
	expect(d.Berth(t, "run", "--name", "db", "-v", "pgdata:/var/lib/db", "busybox", "sh", "-c", "echo row > /var/lib/db/t"), 0, "")
	expect(d.Berth(t, "run", "--rm", "--mount", "type=volume,src=pgdata,dst=/d,readonly", "busybox", "cat", "/d/t"), 0, "row")
	expect(d.Berth(t, "volume", "rm", "pgdata"), 1, "volume is in use")
	df := d.Berth(t, "system", "df", "-v")
	if df.Code != 0 || !regexp.MustCompile(`(?m)^pgdata\s+1\s+4B`).MatchString(df.Stdout) {
		t.Fatalf("df -v: %s", df)
	}
	expect(d.Berth(t, "system", "df"), 0, "Local Volumes")

	// prune asks first; -f does not; -a takes named volumes too.
	expect(d.Berth(t, "volume", "prune"), 0, "WARNING! This will remove anonymous local volumes")
	expect(d.Berth(t, "volume", "prune", "-f"), 0, strings.TrimSpace(anon.Stdout))
	expect(d.Berth(t, "volume", "prune", "-f", "--filter", "colour=red"), 125, "invalid filter 'colour'")
	d.Berth(t, "volume", "create", "spare")
	p := d.Berth(t, "volume", "prune", "-af")
	if p.Code != 0 || !strings.Contains(p.Stdout, "Deleted Volumes:\nspare\n") || strings.Contains(p.Stdout, "pgdata") || strings.Contains(p.Stdout, "fast") {
		t.Fatalf("prune -a: %s", p)
	}
	expect(d.Berth(t, "rm", "db"), 0, "")
	expect(d.Berth(t, "volume", "rm", "pgdata", "fast", "nosuch"), 1, "no such volume")
	expect(d.Berth(t, "volume", "rm", "-f", "nosuch"), 0, "nosuch")
	if out := d.Berth(t, "volume", "ls", "-q"); out.Stdout != "" {
		t.Fatalf("left: %s", out)
	}
	// system prune --volumes.
	d.Berth(t, "create", "-v", "/scratch", "busybox", "true")
	expect(d.Berth(t, "system", "prune", "-f", "--volumes"), 0, "Deleted Volumes:")
	if out := d.Berth(t, "volume", "ls", "-q"); out.Stdout != "" {
		t.Fatalf("system prune --volumes left: %s", out)
	}
}
