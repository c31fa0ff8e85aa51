// Package volume keeps local volumes as docker's "local" driver does: a
// volume is a directory <root>/volumes/<name>/_data, named by the user or
// anonymous (64 hex characters, made for one container), with its labels
// and creation time beside it in <root>/volumes/<name>/meta.json (written
// atomically).
//
// It knows nothing of containers: the engine records which container
// uses which volume and refuses to remove one in use.
package volume
