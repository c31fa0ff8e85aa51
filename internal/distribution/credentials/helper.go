package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// A helper is a program docker-credential-<name> in PATH. It takes the
// action as its argument and the server URL (get, erase) or a JSON
// credential (store) on stdin; get answers with JSON. A username of
// "<token>" marks the secret as an identity token.
const tokenUser = "<token>"

// helperTimeout bounds a helper run: some prompt for a keyring unlock, and
// a pull must not hang forever on one.
const helperTimeout = 30 * time.Second

type helperCred struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

func runHelper(name, action string, stdin []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	prog := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, prog, action)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("credential helper %s: not installed: %w", prog, errdefs.ErrNotFound)
		}
		// Helpers print their error on stdout (the protocol), some on stderr.
		msg := strings.TrimSpace(out.String() + " " + errb.String())
		return out.Bytes(), fmt.Errorf("credential helper %s %s: %v: %s", prog, action, err, msg)
	}
	return out.Bytes(), nil
}

// notFound reports whether a helper's failure is its "no such credential"
// answer.
func notFound(out []byte) bool {
	return strings.Contains(string(out), "credentials not found")
}

func helperGet(name, server string) (Auth, bool, error) {
	out, err := runHelper(name, "get", []byte(server))
	if err != nil {
		if notFound(out) {
			return Auth{}, false, nil
		}
		return Auth{}, false, err
	}
	var c helperCred
	if err := json.Unmarshal(out, &c); err != nil {
		return Auth{}, false, fmt.Errorf("credential helper %s get: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	if c.Username == tokenUser {
		return Auth{IdentityToken: c.Secret}, true, nil
	}
	return Auth{Username: c.Username, Password: c.Secret}, true, nil
}

func helperStore(name, server string, a Auth) error {
	c := helperCred{ServerURL: server, Username: a.Username, Secret: a.Password}
	if a.IdentityToken != "" {
		c.Username, c.Secret = tokenUser, a.IdentityToken
	}
	b, _ := json.Marshal(c)
	_, err := runHelper(name, "store", b)
	return err
}

func helperErase(name, server string) (bool, error) {
	out, err := runHelper(name, "erase", []byte(server))
	if err != nil {
		if notFound(out) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
