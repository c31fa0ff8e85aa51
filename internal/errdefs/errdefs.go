// Package errdefs holds the error classes shared by every layer of berth.
// A package wraps a class where the fact is known
// (fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)); callers test
// with errors.Is, and the API maps each class to one HTTP status.
package errdefs

import "errors"

var (
	ErrNotFound        = errors.New("not found")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrConflict        = errors.New("conflict")
	ErrAlreadyExists   = errors.New("already exists")
	ErrNotModified     = errors.New("not modified")
	ErrUnauthorized    = errors.New("unauthorized")
	ErrForbidden       = errors.New("forbidden")
	ErrUnavailable     = errors.New("unavailable")
	ErrNotImplemented  = errors.New("not implemented")
)
