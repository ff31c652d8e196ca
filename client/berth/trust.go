package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// newConfigTrustCmd is lxc 5.0's `config trust`: the server's trusted
// client certificates and its join tokens.
func newConfigTrustCmd(a *app) *cobra.Command {
	return newGroup("trust", "Manage trusted clients",
		newTrustAddCmd(a),
		newTrustListCmd(a),
		newTrustRemoveCmd(a),
		newTrustListTokensCmd(a),
		newTrustRevokeTokenCmd(a),
	)
}

// splitRemoteArg reads the optional leading "REMOTE:" of the trust commands
// (lxc's `[<remote>:] <thing>`); "REMOTE:thing" works too.
func (a *app) splitRemoteArg(args []string) (*client.Client, string, error) {
	switch len(args) {
	case 0:
		c, err := a.client()
		return c, "", err
	case 1:
		return a.target(args[0])
	}

	c, rest, err := a.target(args[0])
	if err != nil {
		return nil, "", err
	}

	if rest != "" {
		return nil, "", fmt.Errorf("%q: want REMOTE: before %q", args[0], args[1])
	}

	return c, args[1], nil
}

func newTrustAddCmd(a *app) *cobra.Command {
	var name, typ string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "add [REMOTE:] [CERTFILE|NAME]",
		Short: "Add a trusted client (a certificate file, or a join token for a new client)",
		Long: `Add a trusted client.

With a certificate file (PEM), that certificate is trusted. Otherwise a join
token is made for a client to be called NAME (or --name): the client redeems
it with "berth remote add REMOTE TOKEN" (or "lxc remote add REMOTE TOKEN"),
which adds its own certificate. A token is single use.`,
		Args: rangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, arg, err := a.splitRemoteArg(args)
			if err != nil {
				return err
			}

			// Only an argument that looks like a path is a certificate file: a file that
			// happens to bear the client's name in the current directory must not be
			// trusted in its place.
			if looksLikePath(arg) {
				return a.trustCertFile(cmd, c, arg, name, typ)
			}

			if arg != "" {
				if name != "" && name != arg {
					return &usageError{cmd: cmd, err: fmt.Errorf("two names given: %q and --name %q", arg, name)}
				}

				name = arg
			}

			if name == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("a token needs the client's name (NAME or --name)")}
			}

			op, err := c.CreateCertificateToken(cmd.Context(), name, typ)
			if err != nil {
				return err
			}

			_, token, err := client.TokenFromOperation(*op)
			if err != nil {
				return err
			}

			text, err := client.EncodeToken(token)
			if err != nil {
				return err
			}

			if quiet {
				a.printf("%s\n", text)
				return nil
			}

			a.printf("Client %s certificate add token:\n%s\n", name, text)
			return nil
		},
	}

	cmd.Flags().StringVar(&name, "name", "", "Name of the client (default: the certificate file's name)")
	cmd.Flags().StringVar(&typ, "type", api.CertificateTypeClient, "Type of certificate (client or metrics)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Print only the token")

	return cmd
}

// maxCertFile bounds a certificate file read for `trust add`.
const maxCertFile = 64 << 10

// looksLikePath: a certificate file is given as a path (with a / or a .crt/.pem name).
func looksLikePath(arg string) bool {
	return strings.Contains(arg, "/") || strings.HasSuffix(arg, ".crt") || strings.HasSuffix(arg, ".pem")
}

func (a *app) trustCertFile(cmd *cobra.Command, c *client.Client, path, name, typ string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}

	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return err
	}

	if len(data) > maxCertFile {
		return fmt.Errorf("%s: larger than %d bytes, not a certificate", path, maxCertFile)
	}

	cert, err := client.ParseCertificate(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}

	req := api.CertificatesPost{CertificatePut: api.CertificatePut{
		Name: name, Type: typ, Certificate: base64.StdEncoding.EncodeToString(cert.Raw),
	}}

	return c.CreateCertificate(cmd.Context(), req)
}

func newTrustListCmd(a *app) *cobra.Command {
	header := []string{"TYPE", "NAME", "COMMON NAME", "FINGERPRINT", "ISSUE DATE", "EXPIRY DATE"}
	return newListSubcmd(a, "List trusted clients", header, func(ctx context.Context, c *client.Client) (any, [][]string, error) {
		certs, err := c.GetCertificates(ctx)
		if err != nil {
			return nil, nil, err
		}

		rows := [][]string{}
		for _, ce := range certs {
			cn, issued, expires := "", "", ""
			if x, err := client.ParseCertificate([]byte(ce.Certificate)); err == nil {
				cn = x.Subject.CommonName
				issued, expires = trustTime(x.NotBefore), trustTime(x.NotAfter)
			}

			rows = append(rows, []string{ce.Type, ce.Name, cn, shortFingerprint(ce.Fingerprint), issued, expires})
		}

		sort.Slice(rows, func(i, j int) bool { return rows[i][1]+rows[i][3] < rows[j][1]+rows[j][3] })

		return certs, rows, nil
	})
}

// trustTime is lxc's date format in the trust list.
func trustTime(t time.Time) string {
	return t.UTC().Format("Jan 2, 2006 at 3:04pm (MST)")
}

func newTrustRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove [REMOTE:]FINGERPRINT",
		Aliases: []string{"rm"},
		Short:   "Remove a trusted client",
		Args:    rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, fp, err := a.splitRemoteArg(args)
			if err != nil {
				return err
			}

			if fp == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("no fingerprint given")}
			}

			return c.DeleteCertificate(cmd.Context(), fp)
		},
	}
}

// tokenOp is a pending join token and the client name it is for.
type tokenOp struct {
	op    api.Operation
	name  string
	token api.CertificateAddToken
}

// pendingTokens lists the running token operations of c.
func pendingTokens(ctx context.Context, c *client.Client) ([]tokenOp, error) {
	ops, err := c.GetOperations(ctx)
	if err != nil {
		return nil, err
	}

	var tokens []tokenOp
	for _, op := range ops {
		if op.Class != api.OperationClassToken || op.StatusCode != api.Running {
			continue
		}

		name, token, err := client.TokenFromOperation(op)
		if err != nil {
			continue
		}

		tokens = append(tokens, tokenOp{op: op, name: name, token: token})
	}

	sort.Slice(tokens, func(i, j int) bool { return tokens[i].name < tokens[j].name })

	return tokens, nil
}

func newTrustListTokensCmd(a *app) *cobra.Command {
	cmd := newListSubcmd(a, "List the pending join tokens", []string{"NAME", "TOKEN", "EXPIRES AT"}, func(ctx context.Context, c *client.Client) (any, [][]string, error) {
		tokens, err := pendingTokens(ctx, c)
		if err != nil {
			return nil, nil, err
		}

		rows := [][]string{}
		objects := []api.CertificateAddToken{}
		for _, t := range tokens {
			text, err := client.EncodeToken(t.token)
			if err != nil {
				return nil, nil, err
			}

			expires := ""
			if !t.token.ExpiresAt.IsZero() {
				expires = t.token.ExpiresAt.Local().Format(time.DateTime)
			}

			rows = append(rows, []string{t.name, text, expires})
			objects = append(objects, t.token)
		}

		return objects, rows, nil
	})

	cmd.Use, cmd.Aliases = "list-tokens [REMOTE:]", nil
	return cmd
}

func newTrustRevokeTokenCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-token [REMOTE:]NAME",
		Short: "Revoke the join token of a client name",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.splitRemoteArg(args)
			if err != nil {
				return err
			}

			if name == "" {
				return &usageError{cmd: cmd, err: fmt.Errorf("no client name given")}
			}

			tokens, err := pendingTokens(cmd.Context(), c)
			if err != nil {
				return err
			}

			for _, t := range tokens {
				if t.name == name {
					return c.DeleteOperation(cmd.Context(), t.op.ID)
				}
			}

			return fmt.Errorf("no pending token for client %q", name)
		},
	}
}
