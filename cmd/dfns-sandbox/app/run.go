package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
)

// shutdownGrace is how long a shutdown waits for in-flight calls before closing their
// connections (a call stalled by the timeout fault would otherwise hold it for 30 s).
const shutdownGrace = 5 * time.Second

// maxAdminSuffix bounds the search for a free admin e-mail (see adminBootstrap).
const maxAdminSuffix = 100

// Sandbox is a running dfns-sandbox: the Dfns API served on a listener, with the admin
// user's credentials published in the bootstrap directory.
type Sandbox struct {
	// URL is the base URL clients use, with the real port (https://, or http:// with
	// InsecureHTTP). It is the bootstrap DFNS_API_URL.
	URL string
	// Server is the in-memory Dfns, for tests that set faults or read counters directly.
	Server *sandbox.Server
	// Bootstrap is what was written into the bootstrap directory.
	Bootstrap *Bootstrap
	// ReusedAdmin is true when the admin user of an earlier run (same state file and
	// bootstrap directory) was kept instead of a new one being created.
	ReusedAdmin bool

	cfg    Config
	http   *http.Server
	served chan error
}

// Start creates the sandbox, listens, writes the bootstrap directory and serves in the
// background. Stop it with Shutdown.
//
// With a state file and a bootstrap directory from an earlier run, the admin user is kept
// when its credentials still log in to the restored org; otherwise a new admin user is
// created (operator@dfns-sandbox.local, or operator+N@… when the state already has that
// user but its key is lost). The CA is new at every start, so ca.crt is always rewritten.
func Start(cfg Config, errorLog *log.Logger) (*Sandbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srv, err := sandbox.New(sandbox.Options{
		OrgID: cfg.OrgID, Seed: cfg.Seed, StateFile: cfg.StateFile, TokenTTL: cfg.TokenTTL, Strict: cfg.Strict,
	})
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	sb, err := start(cfg, srv, ln, errorLog)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return sb, nil
}

func start(cfg Config, srv *sandbox.Server, ln net.Listener, errorLog *log.Logger) (*Sandbox, error) {
	host, _, _ := net.SplitHostPort(cfg.Listen) // validated by Config.Validate
	sb := &Sandbox{Server: srv, cfg: cfg, served: make(chan error, 1)}
	sb.http = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errorLog}
	scheme, caPEM := "http", []byte(nil)
	if !cfg.InsecureHTTP {
		mat, err := NewTLSMaterial(host)
		if err != nil {
			return nil, err
		}
		scheme, caPEM = "https", mat.CACertPEM
		sb.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{mat.Certificate}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, sb.http.TLSConfig)
	}
	sb.URL = scheme + "://" + net.JoinHostPort(clientHost(host), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	b, reused, err := adminBootstrap(srv, cfg, sb.URL, caPEM)
	if err != nil {
		return nil, err
	}
	if err := WriteBootstrap(cfg.BootstrapDir, b); err != nil {
		return nil, err
	}
	sb.Bootstrap, sb.ReusedAdmin = b, reused
	srv.SetFaults(cfg.Faults)
	go func() { sb.served <- sb.http.Serve(ln) }()
	return sb, nil
}

// clientHost is the host clients should dial for a listen host: loopback for an unspecified
// (wildcard) address.
func clientHost(host string) string {
	switch host {
	case "", "0.0.0.0":
		return loopbackIPv4
	case "::":
		return "::1"
	}
	return host
}

// adminBootstrap returns the admin user's credentials: those of an earlier run if they
// still log in (state file only), otherwise a new admin user's.
func adminBootstrap(srv *sandbox.Server, cfg Config, url string, caPEM []byte) (*Bootstrap, bool, error) {
	b := &Bootstrap{APIURL: url, OrgID: srv.OrgID(), CACertPEM: caPEM}
	if cfg.StateFile != "" {
		old, err := ReadBootstrap(cfg.BootstrapDir)
		if err == nil && old.OrgID == b.OrgID && canLogIn(srv.Handler(), old) == nil {
			b.Username, b.CredID, b.PrivateKeyPEM = old.Username, old.CredID, old.PrivateKeyPEM
			srv.ResetCounters() // the check's login calls are not the caller's
			return b, true, nil
		}
		srv.ResetCounters()
	}
	email := AdminEmail
	for n := 2; ; n++ {
		creds, err := srv.CreateUser(email, true)
		if err == nil {
			b.Username, b.CredID, b.PrivateKeyPEM = creds.Username, creds.CredID, creds.PrivateKeyPEM
			return b, false, nil
		}
		if cfg.StateFile == "" || n > maxAdminSuffix {
			return nil, false, fmt.Errorf("create admin user: %w", err)
		}
		local, domain, _ := strings.Cut(AdminEmail, "@")
		email = fmt.Sprintf("%s+%d@%s", local, n, domain)
	}
}

// ReadyLine is the one line the command prints when it serves; it names no secret.
func (s *Sandbox) ReadyLine() string {
	return fmt.Sprintf("dfns-sandbox ready url=%s org=%s bootstrap=%s", s.URL, s.Bootstrap.OrgID, s.cfg.BootstrapDir)
}

// BootstrapDir returns the directory the credentials were written into.
func (s *Sandbox) BootstrapDir() string { return s.cfg.BootstrapDir }

// Done delivers the HTTP server's error when it stops serving (http.ErrServerClosed after
// Shutdown).
func (s *Sandbox) Done() <-chan error { return s.served }

// Shutdown stops accepting calls, waits up to ctx (and at most shutdownGrace) for in-flight
// ones, closes what is left, and waits for pending webhook deliveries.
func (s *Sandbox) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, shutdownGrace)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = s.http.Close()
	}
	s.Server.Close()
	return err
}

// Run starts the sandbox, prints the ready line to stdout, serves until ctx is done (the
// command cancels it on SIGTERM or SIGINT) and shuts down cleanly.
func Run(ctx context.Context, cfg Config, stdout io.Writer, errorLog *log.Logger) error {
	sb, err := Start(cfg, errorLog)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, sb.ReadyLine()); err != nil {
		_ = sb.Shutdown(context.Background())
		return fmt.Errorf("print ready line: %w", err)
	}
	select {
	case <-ctx.Done():
		return sb.Shutdown(context.WithoutCancel(ctx))
	case err := <-sb.Done():
		_ = sb.Shutdown(context.WithoutCancel(ctx))
		return fmt.Errorf("serve: %w", err)
	}
}
