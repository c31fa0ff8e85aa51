package events

import (
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Filter is docker's events filter: values of one key are alternatives,
// different keys must all match. The zero value matches everything.
type Filter map[string][]string

// filterKeys are the keys docker's /events accepts. Each names the event
// type whose actor it matches by ID or name, except type, event, label,
// scope and image (which also matches a container's image).
var filterKeys = map[string]events.Type{
	"config": events.ConfigEventType, "container": events.ContainerEventType, "daemon": events.DaemonEventType,
	"event": "", "image": events.ImageEventType, "label": "", "network": events.NetworkEventType,
	"node": events.NodeEventType, "plugin": events.PluginEventType, "scope": "", "secret": events.SecretEventType,
	"service": events.ServiceEventType, "type": "", "volume": events.VolumeEventType,
}

// Validate refuses keys docker does not know, in docker's words.
func (f Filter) Validate() error {
	for k := range f {
		if _, ok := filterKeys[k]; !ok {
			return fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	for _, t := range f["type"] {
		switch events.Type(t) {
		case events.BuilderEventType, events.ConfigEventType, events.ContainerEventType, events.DaemonEventType,
			events.ImageEventType, events.NetworkEventType, events.NodeEventType, events.PluginEventType,
			events.SecretEventType, events.ServiceEventType, events.VolumeEventType:
		default:
			return fmt.Errorf("invalid filter 'type=%s': %w", t, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Match reports whether m passes every key of f.
func (f Filter) Match(m Message) bool {
	for k, vs := range f {
		if len(vs) == 0 {
			continue
		}
		if !f.matchKey(k, vs, m) {
			return false
		}
	}
	return true
}

func (f Filter) matchKey(k string, vs []string, m Message) bool {
	switch k {
	case "type":
		return anyOf(vs, func(v string) bool { return string(m.Type) == v })
	case "event":
		// Exec actions carry their command after a colon
		// ("exec_start: sh -c true"); the filter names the action alone.
		action, _, _ := strings.Cut(string(m.Action), ":")
		return anyOf(vs, func(v string) bool { return string(m.Action) == v || action == v })
	case "scope":
		return anyOf(vs, func(v string) bool { return m.Scope == v })
	case "label":
		return anyOf(vs, func(v string) bool {
			lk, lv, hasValue := strings.Cut(v, "=")
			got, ok := m.Actor.Attributes[lk]
			return ok && (!hasValue || got == lv)
		})
	case "image":
		return anyOf(vs, func(v string) bool {
			if m.Type == events.ImageEventType && (sameImage(m.Actor.ID, v) || sameImage(m.Actor.Attributes["name"], v)) {
				return true
			}
			return m.Type == events.ContainerEventType && sameImage(m.Actor.Attributes["image"], v)
		})
	default:
		t := filterKeys[k]
		return m.Type == t && anyOf(vs, func(v string) bool {
			return m.Actor.ID == v || m.Actor.Attributes["name"] == v ||
				(len(v) >= 12 && strings.HasPrefix(m.Actor.ID, v))
		})
	}
}

// sameImage compares image names as docker users write them: "busybox"
// is "busybox:latest", and an ID may be given with or without "sha256:".
func sameImage(have, want string) bool {
	if have == "" || want == "" {
		return false
	}
	norm := func(s string) string {
		s = strings.TrimPrefix(s, "docker.io/library/")
		s = strings.TrimPrefix(s, "docker.io/")
		s = strings.TrimPrefix(s, "sha256:")
		if !strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") && !strings.Contains(s, "@") && len(s) != 64 {
			s += ":latest"
		}
		return s
	}
	return norm(have) == norm(want)
}

func anyOf(vs []string, fn func(string) bool) bool {
	for _, v := range vs {
		if fn(v) {
			return true
		}
	}
	return false
}
