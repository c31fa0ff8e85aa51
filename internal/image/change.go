package image

import (
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ApplyChanges applies docker's --change instructions (a Dockerfile line
// each: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME,
// STOPSIGNAL) to c, as `docker import` and `docker commit` do. Any other
// instruction is errdefs.ErrInvalidArgument.
func ApplyChanges(c *ocispec.ImageConfig, changes []string) error {
	for _, ch := range changes {
		if err := applyChange(c, ch); err != nil {
			return fmt.Errorf("change %q: %w", ch, err)
		}
	}
	return nil
}

func applyChange(c *ocispec.ImageConfig, ch string) error {
	ch = strings.TrimSpace(ch)
	verb, arg, _ := strings.Cut(ch, " ")
	arg = strings.TrimSpace(arg)
	switch strings.ToUpper(verb) {
	case "CMD":
		c.Cmd = commandForm(arg)
	case "ENTRYPOINT":
		c.Entrypoint = commandForm(arg)
	case "ENV":
		kvs, err := keyValues(arg, true)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "LABEL":
		kvs, err := keyValues(arg, false)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range kvs {
			c.Labels[kv[0]] = kv[1]
		}
	case "WORKDIR":
		if arg == "" {
			return fmt.Errorf("WORKDIR needs a path: %w", errdefs.ErrInvalidArgument)
		}
		c.WorkingDir = arg
	case "USER":
		if arg == "" {
			return fmt.Errorf("USER needs a user: %w", errdefs.ErrInvalidArgument)
		}
		c.User = arg
	case "EXPOSE":
		for _, p := range strings.Fields(arg) {
			port, proto, _ := strings.Cut(p, "/")
			if proto == "" {
				proto = "tcp"
			}
			if port == "" || strings.Trim(port, "0123456789-") != "" || (proto != "tcp" && proto != "udp" && proto != "sctp") {
				return fmt.Errorf("EXPOSE %s: want port[/tcp|udp|sctp]: %w", p, errdefs.ErrInvalidArgument)
			}
			if c.ExposedPorts == nil {
				c.ExposedPorts = map[string]struct{}{}
			}
			c.ExposedPorts[port+"/"+proto] = struct{}{}
		}
	case "VOLUME":
		vols := jsonArray(arg)
		if vols == nil {
			vols = strings.Fields(arg)
		}
		if len(vols) == 0 {
			return fmt.Errorf("VOLUME needs a path: %w", errdefs.ErrInvalidArgument)
		}
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			c.Volumes[v] = struct{}{}
		}
	case "STOPSIGNAL":
		if arg == "" {
			return fmt.Errorf("STOPSIGNAL needs a signal: %w", errdefs.ErrInvalidArgument)
		}
		c.StopSignal = arg
	default:
		return fmt.Errorf("%s is not a valid change command (want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR): %w", verb, errdefs.ErrInvalidArgument)
	}
	return nil
}

// commandForm reads the exec form (a JSON array) or, failing that, the
// shell form, which runs under /bin/sh -c as in a Dockerfile.
func commandForm(arg string) []string {
	if a := jsonArray(arg); a != nil {
		return a
	}
	return []string{"/bin/sh", "-c", arg}
}

func jsonArray(arg string) []string {
	if !strings.HasPrefix(arg, "[") {
		return nil
	}
	var a []string
	if json.Unmarshal([]byte(arg), &a) != nil {
		return nil
	}
	if a == nil {
		a = []string{}
	}
	return a
}

// keyValues parses `k=v k2="v 2"`, or for ENV the old `k v w` form.
func keyValues(arg string, legacy bool) ([][2]string, error) {
	words, err := splitWords(arg)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("needs key=value: %w", errdefs.ErrInvalidArgument)
	}
	if legacy && !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(arg, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value: %w", w, errdefs.ErrInvalidArgument)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks outside quotes and removes the quotes.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	var quote rune
	in := false
	for i := 0; i < len(s); i++ {
		r := rune(s[i])
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0 && r == '\\' && quote == '"' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote: %w", errdefs.ErrInvalidArgument)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
