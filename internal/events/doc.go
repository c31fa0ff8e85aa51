// Package events is the Engine's event bus: every lifecycle step (an image
// pulled, a container started) is published here once, kept in a bounded
// in-memory ring for `docker events --since`, and fanned out to live
// subscribers with docker's filters.
//
// It knows nothing of HTTP, images or containers: an event is docker's
// wire message (type, action, actor id and attributes, time in nanos),
// and the filters read only those fields. It owns nothing on disk: events
// are lost on a daemon restart, as docker's are.
package events
