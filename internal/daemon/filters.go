package daemon

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Filters are docker's --filter key=value pairs, values by key.
type Filters map[string][]string

// ParseFilters reads "key=value" arguments.
func ParseFilters(args []string) (Filters, error) {
	f := Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s: %w", a, errdefs.ErrInvalidArgument)
		}
		f[strings.ToLower(k)] = append(f[strings.ToLower(k)], v)
	}
	return f, nil
}

// check refuses keys not in allowed, with docker's words.
func (f Filters) check(allowed ...string) error {
	for k := range f {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// bool reads a boolean filter; set says whether it was given.
func (f Filters) bool(key string) (val, set bool, err error) {
	vs := f[key]
	if len(vs) == 0 {
		return false, false, nil
	}
	for _, v := range vs {
		switch strings.ToLower(v) {
		case "true", "1":
			val = true
		case "false", "0":
		default:
			return false, false, fmt.Errorf("invalid filter '%s=%s': %w", key, v, errdefs.ErrInvalidArgument)
		}
	}
	return val, true, nil
}

// labels reports whether labels satisfy every label=key[=value] filter.
func (f Filters) labels(key string, labels map[string]string) bool {
	for _, want := range f[key] {
		k, v, hasValue := strings.Cut(want, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}
