package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// decodeJSON reads r's body into v. An empty body leaves v as it is (docker
// accepts a missing body where all fields are optional) unless required.
// Bad JSON, trailing data and bodies over MaxJSONBody are
// errdefs.ErrInvalidArgument (400), in the words docker uses.
func decodeJSON(r *http.Request, v any, required bool) error {
	if r.Body == nil || r.Body == http.NoBody {
		if required {
			return fmt.Errorf("invalid JSON: request body is empty: %w", errdefs.ErrInvalidArgument)
		}
		return nil
	}
	// docker's rule: a body sent with a media type must say it is JSON
	// (curl -d sends a form, which is not).
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return fmt.Errorf("unsupported Content-Type header (%s): must be 'application/json': %w", ct, errdefs.ErrInvalidArgument)
		}
	}
	body := http.MaxBytesReader(nil, r.Body, MaxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return fmt.Errorf("request body too large: over %d bytes: %w", MaxJSONBody, errdefs.ErrInvalidArgument)
		case errors.Is(err, io.EOF):
			if required {
				return fmt.Errorf("invalid JSON: request body is empty: %w", errdefs.ErrInvalidArgument)
			}
			return nil
		}
		return fmt.Errorf("invalid JSON: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	// One JSON document only: trailing garbage is a malformed request,
	// not something to ignore.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("request body too large: over %d bytes: %w", MaxJSONBody, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("invalid JSON: unexpected data after the object: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// boolQuery reads a boolean query value as docker does: absent, "", "0",
// "no", "false" and "none" are false, "1", "yes", "true" true; anything
// else is a 400 rather than a silent guess.
func boolQuery(r *http.Request, key string) (bool, error) {
	v := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key)))
	switch v {
	case "", "0", "no", "false", "none":
		return false, nil
	case "1", "yes", "true":
		return true, nil
	}
	return false, fmt.Errorf("invalid value for %s: %q: want a boolean: %w", key, v, errdefs.ErrInvalidArgument)
}

// intQuery reads an integer query value; def when absent.
func intQuery(r *http.Request, key string, def int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("invalid value for %s: %q: want an integer: %w", key, v, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// optIntQuery reads an optional integer: nil when absent.
func optIntQuery(r *http.Request, key string) (*int, error) {
	if !r.URL.Query().Has(key) || r.URL.Query().Get(key) == "" {
		return nil, nil
	}
	n, err := intQuery(r, key, 0)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// filtersQuery reads docker's filters parameter: JSON, either the current
// {"key": {"value": true}} form or the legacy {"key": ["value"]}.
func filtersQuery(r *http.Request) (map[string][]string, error) {
	raw := r.URL.Query().Get("filters")
	out := map[string][]string{}
	if raw == "" {
		return out, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &sets); err == nil {
		for k, vs := range sets {
			for v, on := range vs {
				if on {
					out[k] = append(out[k], v)
				}
			}
		}
		return out, nil
	}
	var lists map[string][]string
	if err := json.Unmarshal([]byte(raw), &lists); err != nil {
		return nil, fmt.Errorf("invalid filter: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	for k, vs := range lists {
		out[k] = append(out[k], vs...)
	}
	return out, nil
}

// flush pushes a streamed message to the client now.
func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
