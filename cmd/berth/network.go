package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/errdefs"
)

// newNetworkCommand is `berth network` and its verbs, with docker's
// flags and output; each is one or a few API calls.
func newNetworkCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(
		newNetworkCreateCommand(g),
		newNetworkLsCommand(g),
		newNetworkInspectCommand(g),
		newNetworkRmCommand(g),
		newNetworkPruneCommand(g),
		newNetworkConnectCommand(g),
		newNetworkDisconnectCommand(g),
	)
	return cmd
}

// keyValues reads repeated KEY=VALUE flags (--label, --opt) into a map; a
// bare KEY has an empty value, as docker's.
func keyValues(vs []string) map[string]string {
	out := map[string]string{}
	for _, v := range vs {
		k, val, _ := strings.Cut(v, "=")
		out[k] = val
	}
	return out
}

func newNetworkCreateCommand(g *globals) *cobra.Command {
	var (
		driver, ipamDriver, scope                  string
		subnets, gateways, ranges, labels, options []string
		internal, ipv6, attachable                 bool
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ipam, err := ipamConfig(subnets, gateways, ranges)
			if err != nil {
				return err
			}
			req := network.CreateRequest{Name: args[0], Driver: driver, Scope: scope, Internal: internal, Attachable: attachable,
				Labels: keyValues(labels), Options: keyValues(options),
				IPAM: &network.IPAM{Driver: ipamDriver, Config: ipam, Options: map[string]string{}}}
			if cmd.Flags().Changed("ipv6") {
				req.EnableIPv6 = &ipv6
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.NetworkCreate(ctx, req)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.ID)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "bridge", "driver to manage the network (only bridge)")
	fl.StringVar(&ipamDriver, "ipam-driver", "default", "IP address management driver (only default)")
	fl.StringVar(&scope, "scope", "", "control the network's scope (only local)")
	fl.StringArrayVar(&subnets, "subnet", nil, "subnet in CIDR format that represents a network segment (one IPv4, one IPv6)")
	fl.StringArrayVar(&gateways, "gateway", nil, "IPv4 or IPv6 gateway for the subnet")
	fl.StringArrayVar(&ranges, "ip-range", nil, "allocate container IPs from a sub-range")
	fl.StringArrayVar(&labels, "label", nil, "set metadata on a network")
	fl.StringArrayVarP(&options, "opt", "o", nil, "set driver specific options (com.docker.network.bridge.name, com.docker.network.driver.mtu, …)")
	fl.BoolVar(&internal, "internal", false, "restrict external access to the network")
	fl.BoolVar(&ipv6, "ipv6", false, "enable or disable IPv6 networking")
	fl.BoolVar(&attachable, "attachable", false, "enable manual container attachment (every local network is)")
	return cmd
}

// ipamConfig pairs --subnet, --gateway and --ip-range as docker does: a
// gateway or range belongs to the subnet that contains it.
func ipamConfig(subnets, gateways, ranges []string) ([]network.IPAMConfig, error) {
	var out []network.IPAMConfig
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, usageErr("invalid subnet %s: want CIDR notation", s)
		}
		out = append(out, network.IPAMConfig{Subnet: p.Masked()})
	}
	owner := func(flag string, a netip.Addr) (*network.IPAMConfig, error) {
		for i := range out {
			if out[i].Subnet.Contains(a) {
				return &out[i], nil
			}
		}
		return nil, usageErr("no matching subnet for %s %s", flag, a)
	}
	for _, gw := range gateways {
		a, err := netip.ParseAddr(gw)
		if err != nil {
			return nil, usageErr("invalid gateway %s: want an IP address", gw)
		}
		c, err := owner("gateway", a)
		if err != nil {
			return nil, err
		}
		if c.Gateway.IsValid() {
			return nil, usageErr("cannot configure multiple gateways for subnet %s", c.Subnet)
		}
		c.Gateway = a
	}
	for _, r := range ranges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, usageErr("invalid ip-range %s: want CIDR notation", r)
		}
		c, err := owner("range", p.Addr())
		if err != nil {
			return nil, err
		}
		if c.IPRange.IsValid() {
			return nil, usageErr("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", c.IPRange, p, c.Subnet)
		}
		c.IPRange = p.Masked()
	}
	return out, nil
}

var networksTable = table{headers: map[string]string{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
	"Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED",
}, cols: []string{"ID", "Name", "Driver", "Scope"}}

func newNetworkLsCommand(g *globals) *cobra.Command {
	var (
		quiet, noTrunc bool
		filters        []string
		format         string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				nets, err := c.NetworkList(ctx, f)
				if err != nil {
					return err
				}
				slices.SortFunc(nets, func(a, b network.Summary) int { return strings.Compare(a.Name, b.Name) })
				var rows []map[string]string
				for _, n := range nets {
					id := n.ID
					if !noTrunc && len(id) > 12 {
						id = id[:12]
					}
					var labels []string
					for k, v := range n.Labels {
						labels = append(labels, k+"="+v)
					}
					slices.Sort(labels)
					rows = append(rows, map[string]string{
						"ID": id, "Name": n.Name, "Driver": n.Driver, "Scope": n.Scope,
						"IPv4": strconv.FormatBool(n.EnableIPv4), "IPv6": strconv.FormatBool(n.EnableIPv6),
						"Internal": strconv.FormatBool(n.Internal), "Labels": strings.Join(labels, ","),
						"CreatedAt": n.Created.Format("2006-01-02 15:04:05.999999999 -0700 MST"),
					})
				}
				out := cmd.OutOrStdout()
				if quiet {
					for _, r := range rows {
						fmt.Fprintln(out, r["ID"])
					}
					return nil
				}
				return networksTable.print(out, format, rows)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	fl.StringArrayVarP(&filters, "filter", "f", nil, `provide filter values (e.g. "driver=bridge")`)
	fl.StringVar(&format, "format", "", "format output using a Go template, 'json', or 'table TEMPLATE'")
	return cmd
}

func newNetworkInspectCommand(g *globals) *cobra.Command {
	var (
		format  string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return inspectEach(ctx, cmd, args, format, func(ctx context.Context, name string) (any, error) {
					return c.NetworkInspect(ctx, name)
				})
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "verbose output for diagnostics (the same for local networks)")
	return cmd
}

func newNetworkRmCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var failed []string
				for _, name := range args {
					err := c.NetworkRemove(ctx, name)
					if err != nil && !(force && errors.Is(err, errdefs.ErrNotFound)) {
						failed = append(failed, errorText(err))
						continue
					}
					if err == nil {
						fmt.Fprintln(cmd.OutOrStdout(), name)
					}
				}
				if len(failed) > 0 {
					return exitError{code: 1, err: errors.New(strings.Join(failed, "\n"))}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not error if the network does not exist")
	return cmd
}

func newNetworkPruneCommand(g *globals) *cobra.Command {
	var (
		force   bool
		filters []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filters)
			if err != nil {
				return err
			}
			if !force {
				fmt.Fprint(cmd.OutOrStdout(), "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")
				var answer string
				fmt.Fscanln(cmd.InOrStdin(), &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.NetworksPrune(ctx, f)
				if err != nil {
					return err
				}
				if len(res.NetworksDeleted) > 0 {
					out := cmd.OutOrStdout()
					fmt.Fprintln(out, "Deleted Networks:")
					for _, n := range res.NetworksDeleted {
						fmt.Fprintln(out, n)
					}
					fmt.Fprintln(out)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

func newNetworkConnectCommand(g *globals) *cobra.Command {
	var (
		aliases, links, linkLocal, driverOpts []string
		ip4, ip6                              string
	)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			es := &network.EndpointSettings{Aliases: aliases, Links: links}
			if len(driverOpts) > 0 {
				es.DriverOpts = keyValues(driverOpts)
			}
			if ip4 != "" || ip6 != "" || len(linkLocal) > 0 {
				es.IPAMConfig = &network.EndpointIPAMConfig{}
				for _, x := range []struct {
					flag, v string
					dst     *netip.Addr
				}{{"--ip", ip4, &es.IPAMConfig.IPv4Address}, {"--ip6", ip6, &es.IPAMConfig.IPv6Address}} {
					if x.v == "" {
						continue
					}
					a, err := netip.ParseAddr(x.v)
					if err != nil {
						return usageErr("%s %s: not an IP address", x.flag, x.v)
					}
					*x.dst = a
				}
				for _, v := range linkLocal {
					a, err := netip.ParseAddr(v)
					if err != nil {
						return usageErr("--link-local-ip %s: not an IP address", v)
					}
					es.IPAMConfig.LinkLocalIPs = append(es.IPAMConfig.LinkLocalIPs, a)
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return c.NetworkConnect(ctx, args[0], args[1], es)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	fl.StringVar(&ip4, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fl.StringArrayVar(&links, "link", nil, "add link to another container")
	fl.StringArrayVar(&linkLocal, "link-local-ip", nil, "add a link-local address for the container")
	fl.StringArrayVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	return cmd
}

func newNetworkDisconnectCommand(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return c.NetworkDisconnect(ctx, args[0], args[1], force)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return cmd
}

// inspectEach prints the objects get finds for names, as a JSON array or
// through format; the names it does not find are reported after the rest,
// and make the exit status 1, as docker's inspect verbs do.
func inspectEach(ctx context.Context, cmd *cobra.Command, names []string, format string, get func(context.Context, string) (any, error)) error {
	docs := []any{}
	var missing []string
	for _, name := range names {
		d, err := get(ctx, name)
		if errors.Is(err, errdefs.ErrNotFound) {
			missing = append(missing, errorText(err))
			continue
		}
		if err != nil {
			return err
		}
		docs = append(docs, d)
	}
	out := cmd.OutOrStdout()
	if format != "" {
		for _, d := range docs {
			if err := execTemplate(out, format, d); err != nil {
				return localError{err}
			}
		}
	} else if err := marshalIndent(out, docs); err != nil {
		return err
	}
	if len(missing) > 0 {
		return exitError{code: 1, err: errors.New(strings.Join(missing, "\n"))}
	}
	return nil
}
