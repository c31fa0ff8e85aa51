package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/common"

	"github.com/berth-dev/berth/internal/errdefs"
)

// statusFor maps an error class to the status docker answers with.
// Anything unclassified is the server's fault: 500.
func statusFor(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrAlreadyExists):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errdefs.ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers with err's status and docker's body. A 304 has no
// body by HTTP's rules (RFC 9110 15.4.5), so it gets none.
func writeError(w http.ResponseWriter, err error) {
	status := statusFor(err)
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(common.ErrorResponse{Message: message(err)})
}

// classes are the errdefs sentinels, whose text message drops.
var classes = []error{
	errdefs.ErrNotFound, errdefs.ErrInvalidArgument, errdefs.ErrConflict, errdefs.ErrAlreadyExists,
	errdefs.ErrNotModified, errdefs.ErrUnauthorized, errdefs.ErrForbidden, errdefs.ErrUnavailable,
	errdefs.ErrNotImplemented,
}

// message is err's text as docker users read it: a class wrapped last
// ("No such image: x: not found") is a tag for errors.Is, not words for
// the user, so it goes ("No such image: x"). The client adds it back.
func message(err error) string {
	msg := err.Error()
	for _, c := range classes {
		if trimmed, ok := strings.CutSuffix(msg, ": "+c.Error()); ok && errors.Is(err, c) {
			return trimmed
		}
	}
	return msg
}
