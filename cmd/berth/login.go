package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/distribution/credentials"
)

func newLoginCommand(g *globals) *cobra.Command {
	var (
		user, password string
		passwordStdin  bool
	)
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long:  "Authenticate to a registry. Defaults to Docker Hub if no server is specified.\nCredentials go to docker's config.json ($DOCKER_CONFIG or ~/.docker), where docker finds them too.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			in := cmd.InOrStdin()
			stdin := bufio.NewReader(in)
			if password != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
			}
			if passwordStdin {
				if user == "" {
					return errors.New("must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(stdin)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" {
				fmt.Fprint(cmd.OutOrStdout(), "Username: ")
				line, err := stdin.ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read username: %w", err)
				}
				user = strings.TrimSpace(line)
			}
			if password == "" {
				fmt.Fprint(cmd.OutOrStdout(), "Password: ")
				p, err := readPassword(in, stdin)
				fmt.Fprintln(cmd.OutOrStdout())
				if err != nil {
					return fmt.Errorf("read password: %w", err)
				}
				password = p
			}
			if user == "" || password == "" {
				return errors.New("username and password are required")
			}
			auth := registry.AuthConfig{Username: user, Password: password, ServerAddress: server}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.Login(ctx, auth)
				if err != nil {
					return err
				}
				path, err := credentials.DefaultPath()
				if err != nil {
					return err
				}
				f, err := credentials.Load(path)
				if err != nil {
					return err
				}
				if err := f.Set(server, credentials.Auth{Username: user, Password: password, IdentityToken: res.IdentityToken}); err != nil {
					return err
				}
				if err := f.Save(); err != nil {
					return err
				}
				if f.Helper(server) == "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Your password will be stored unencrypted in "+path+".")
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.Status)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&user, "username", "u", "", "username")
	fl.StringVarP(&password, "password", "p", "", "password")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

// readPassword reads a line with echo off when in is a terminal.
func readPassword(in io.Reader, buffered *bufio.Reader) (string, error) {
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fd := int(f.Fd())
		old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err == nil {
			noEcho := *old
			noEcho.Lflag &^= unix.ECHO
			if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err == nil {
				defer unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck // best effort restore
			}
		}
	}
	line, err := buffered.ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newLogoutCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Log out from a registry. Defaults to Docker Hub if no server is specified.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			path, err := credentials.DefaultPath()
			if err != nil {
				return err
			}
			f, err := credentials.Load(path)
			if err != nil {
				return err
			}
			key := credentials.Key(server)
			found, err := f.Delete(server)
			if err != nil {
				return err
			}
			if !found {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", key)
			return f.Save()
		},
	}
}
