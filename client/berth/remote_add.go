package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/config"
	"github.com/berth-dev/berth/shared/api"
)

// maxAnswerLen bounds a line typed at a prompt.
const maxAnswerLen = 4096

type remoteAddFlags struct {
	acceptCert bool
	token      string
}

// newRemoteAddCmd is lxc 5.0's `remote add [NAME] URL|TOKEN`: meet the
// server's certificate (the user confirms its fingerprint, or a token
// vouches for it), pin it, and become trusted with a join token if the
// server does not trust this client yet.
func newRemoteAddCmd(a *app) *cobra.Command {
	f := remoteAddFlags{}
	cmd := &cobra.Command{
		Use:   "add [NAME] URL|TOKEN",
		Short: "Add new remote servers",
		Long: `Add a remote server: https://HOST[:PORT] (port 8443 by default), unix:///path,
or a join token made on the server by "berth config trust add" (or
"lxc config trust add"), whose addresses are tried in turn.

On first contact the server's certificate fingerprint is shown and must be
confirmed (or --accept-certificate given) unless a token vouches for it. A
server that does not trust this client yet needs a token (--token, or typed
at the prompt).`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, addr := args[0], args[0]
			if len(args) == 2 {
				addr = args[1]
			} else if _, err := client.DecodeToken(addr); err == nil {
				return &usageError{cmd: cmd, err: fmt.Errorf("a token needs a remote name: berth remote add NAME TOKEN")}
			}

			return a.remoteAdd(cmd.Context(), name, addr, f)
		},
	}

	cmd.Flags().BoolVar(&f.acceptCert, "accept-certificate", false, "Accept the server's certificate without asking")
	cmd.Flags().StringVar(&f.token, "token", "", "Join token to become trusted with")

	return cmd
}

func (a *app) remoteAdd(ctx context.Context, name, addr string, f remoteAddFlags) error {
	conf, err := a.config()
	if err != nil {
		return err
	}

	err = config.ValidateName(name)
	if err != nil {
		return err
	}

	if r, ok := conf.Remotes[name]; ok {
		return fmt.Errorf("remote %s exists as <%s>", name, r.Addr)
	}

	// A token as the address: the server's addresses are in it.
	var token *api.CertificateAddToken
	tokenText := f.token
	candidates := []string{addr}
	if t, err := client.DecodeToken(addr); err == nil {
		token, tokenText = t, addr
		candidates = t.Addresses
	} else if strings.HasPrefix(addr, "eyJ") {
		// Base64 of `{"`: a damaged token, not a host name.
		return err
	}

	if token == nil && f.token != "" {
		token, err = client.DecodeToken(f.token)
		if err != nil {
			return err
		}
	}

	if strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "/") {
		return a.addUnixRemote(ctx, conf, name, addr)
	}

	var errs []string
	for _, cand := range candidates {
		joined, err := a.addHTTPSRemote(ctx, conf, name, cand, token, tokenText, f)
		if err == nil {
			if joined {
				a.printf("Client certificate now trusted by server: %s\n", name)
			}

			return nil
		}

		// Without a token, or for a reason other than reaching this
		// address, there is nothing else to try.
		if token == nil || len(candidates) == 1 || errors.Is(err, errNotTrusted) {
			return err
		}

		errs = append(errs, fmt.Sprintf("%s: %v", cand, err))
	}

	return fmt.Errorf("no address of the token worked: %s", strings.Join(errs, "; "))
}

// errNotTrusted is a server that refused to trust this client.
var errNotTrusted = errors.New("the server doesn't trust this client")

// addHTTPSRemote adds remote name at addr, joining the server's trust
// store if needed (joined). On failure it leaves nothing behind: no
// configuration entry, no pinned certificate.
func (a *app) addHTTPSRemote(ctx context.Context, conf *config.Config, name, addr string, token *api.CertificateAddToken, tokenText string, f remoteAddFlags) (joined bool, err error) {
	url, err := remoteAddr(addr)
	if err != nil {
		return false, err
	}

	cert, key, err := conf.ClientCertificate()
	if err != nil {
		return false, err
	}

	pinned, err := a.meetCertificate(ctx, url, cert, key, token, f.acceptCert)
	if err != nil {
		return false, err
	}

	if pinned == nil {
		// The system roots vouch for the server: a pin left from an older remote of
		// this name must not override them.
		err = removeIfExists(conf.ServerCertPath(name))
		if err != nil {
			return false, err
		}
	} else {
		err = conf.SaveServerCert(name, pinned)
		if err != nil {
			return false, err
		}

		defer func() {
			if err != nil {
				_ = removeIfExists(conf.ServerCertPath(name))
			}
		}()
	}

	c, err := client.ConnectHTTPS(url, client.HTTPSArgs{ClientCert: cert, ClientKey: key, ServerCert: pinned})
	if err != nil {
		return false, err
	}

	srv, _, err := c.GetServer(ctx)
	if err != nil {
		return false, err
	}

	if srv.Auth != "trusted" {
		joined = true
		if !slices.Contains(srv.AuthMethods, "tls") {
			return false, fmt.Errorf("the server offers no TLS client authentication (auth methods: %s)", strings.Join(srv.AuthMethods, ", "))
		}

		if tokenText == "" {
			tokenText, err = a.askToken(name)
			if err != nil {
				return false, err
			}

			// A token is a bearer credential for the server that made it: send it only to
			// that server. One typed at the prompt has not been checked yet.
			err = checkTokenServer(ctx, url, pinned, tokenText)
			if err != nil {
				return false, err
			}
		}

		// Like the 5.0 client: the whole token as the password.
		err = c.CreateCertificate(ctx, api.CertificatesPost{Password: tokenText})
		if err != nil {
			return false, fmt.Errorf("%w: %w", errNotTrusted, err)
		}

		srv, _, err = c.GetServer(ctx)
		if err != nil {
			return false, err
		}

		if srv.Auth != "trusted" {
			return false, fmt.Errorf("%w after authentication", errNotTrusted)
		}
	}

	conf.Remotes[name] = config.Remote{Addr: url, Protocol: config.ProtocolLXD}

	return joined, a.saveConfig()
}

// meetCertificate decides which server certificate to pin: with a token,
// the one whose fingerprint the token carries; without, none if the system
// roots vouch for the server, else the one presented, once the user has
// accepted its fingerprint. It returns the PEM to pin (nil: none).
func (a *app) meetCertificate(ctx context.Context, url string, cert, key []byte, token *api.CertificateAddToken, accept bool) ([]byte, error) {
	if token == nil {
		c, err := client.ConnectHTTPS(url, client.HTTPSArgs{ClientCert: cert, ClientKey: key})
		if err != nil {
			return nil, err
		}

		_, _, err = c.GetServer(ctx)
		if err == nil {
			return nil, nil
		}

		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			return nil, err
		}
	}

	srvCert, err := client.GetServerCertificate(ctx, url)
	if err != nil {
		return nil, err
	}

	fp := client.Fingerprint(srvCert)
	if token != nil {
		if fp != token.Fingerprint {
			return nil, fmt.Errorf("the server's certificate fingerprint %s is not the token's %s", fp, token.Fingerprint)
		}

		return client.EncodeCertificate(srvCert), nil
	}

	if !accept {
		err := a.confirmFingerprint(srvCert)
		if err != nil {
			return nil, err
		}
	}

	return client.EncodeCertificate(srvCert), nil
}

// confirmFingerprint asks lxc's question: y, n, or the fingerprint itself.
func (a *app) confirmFingerprint(cert *x509.Certificate) error {
	fp := client.Fingerprint(cert)
	a.printf("Certificate fingerprint: %s\nok (y/n/[fingerprint])? ", fp)

	line, err := a.readLine()
	if err != nil {
		return errors.New("the server's certificate was not accepted (no answer; pass --accept-certificate to accept it)")
	}

	switch {
	case line == fp, strings.EqualFold(line, "y"), strings.EqualFold(line, "yes"):
		return nil
	case strings.EqualFold(line, "n"), strings.EqualFold(line, "no"), line == "":
		return errors.New("server certificate NACKed by user")
	}

	return errors.New("please type 'y', 'n' or the fingerprint")
}

// askToken prompts for a join token on a terminal; elsewhere it is an error
// naming what to do.
func (a *app) askToken(name string) (string, error) {
	f, ok := a.in.(*os.File)
	if !ok || !isTerminal(f) {
		return "", fmt.Errorf("%w: create a token on the server (berth config trust add, or lxc config trust add) and pass it with --token", errNotTrusted)
	}

	a.printf("Token for %s: ", name)

	// Not echoed: the token is a secret.
	data, err := term.ReadPassword(int(f.Fd()))
	a.printf("\n")
	line := strings.TrimSpace(string(data))
	if err != nil || line == "" {
		return "", fmt.Errorf("%w: no token given", errNotTrusted)
	}

	if len(line) > maxAnswerLen {
		return "", fmt.Errorf("%w: the token is longer than %d bytes", errNotTrusted, maxAnswerLen)
	}

	return line, nil
}

// checkTokenServer refuses to send a join token to a server other than the one whose
// certificate fingerprint it carries. pinned is the certificate pinned for this remote
// (nil when the system roots vouched for it; then the one presented now is read).
// Text that is not a token (an older server's password) has nothing to check.
func checkTokenServer(ctx context.Context, url string, pinned []byte, text string) error {
	token, err := client.DecodeToken(text)
	if err != nil {
		return nil
	}

	var cert *x509.Certificate
	if pinned != nil {
		cert, err = client.ParseCertificate(pinned)
	} else {
		cert, err = client.GetServerCertificate(ctx, url)
	}

	if err != nil {
		return err
	}

	fp := client.Fingerprint(cert)
	if fp != token.Fingerprint {
		return fmt.Errorf("the token was made by the server with certificate %s, not by this one (%s): not sending it", token.Fingerprint, fp)
	}

	return nil
}

// readLine reads one line from standard input, bounded.
func (a *app) readLine() (string, error) {
	r := bufio.NewReader(io.LimitReader(a.in, maxAnswerLen))
	line, err := r.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}

	return strings.TrimSpace(line), nil
}

// addUnixRemote adds a remote on another local socket (unix:///path).
func (a *app) addUnixRemote(ctx context.Context, conf *config.Config, name, addr string) error {
	path := strings.TrimPrefix(strings.TrimPrefix(addr, "unix:"), "//")
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("invalid unix address %q: want unix:///absolute/path", addr)
	}

	c, err := client.Connect(path)
	if err != nil {
		return err
	}

	_, _, err = c.GetServer(ctx)
	if err != nil {
		return err
	}

	conf.Remotes[name] = config.Remote{Addr: "unix://" + path, Protocol: config.ProtocolLXD}

	return a.saveConfig()
}

// remoteAddr is the address kept for an HTTPS remote: https://HOST:PORT.
func remoteAddr(addr string) (string, error) {
	return client.NormalizeURL(addr)
}

func removeIfExists(path string) error {
	err := os.Remove(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	return nil
}

func renameIfExists(from, to string) error {
	err := os.Rename(from, to)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	return nil
}
