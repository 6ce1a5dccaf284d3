// Package app is the dfns-sandbox command: it serves the in-memory Dfns of
// internal/dfns/sandbox over HTTPS with a CA it generates, and writes an admin user's
// credentials into a bootstrap directory in the layout the operator reads (docs/architecture.md,
// "The operator's credentials").
//
// The command's main only parses flags and waits for a signal; everything else lives here so
// that tests (this package's, and the TypeScript SDK conformance test in test/sdk) run the
// same code in-process.
package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
)

// DefaultListen is the address served when --listen is not given.
const DefaultListen = "127.0.0.1:8443"

// faultKinds lists every fault kind the sandbox knows, for flag validation.
var faultKinds = []sandbox.FaultKind{
	sandbox.FaultInternal,
	sandbox.FaultRateLimited,
	sandbox.FaultRateLimitedRetry,
	sandbox.FaultTimeout,
	sandbox.FaultAnswerLost,
}

// Config is what one dfns-sandbox process does; ParseFlags fills it from the command line.
type Config struct {
	// Listen is the TCP address to serve; port 0 picks a free port.
	Listen string
	// BootstrapDir receives the admin user's credentials and dfns-credentials.yaml. Required.
	BootstrapDir string
	// InsecureHTTP serves plain HTTP instead of HTTPS (no CA, no ca.crt).
	InsecureHTTP bool
	// StateFile, when set, keeps the sandbox's state across restarts.
	StateFile string
	// OrgID fixes the organisation ID of a new sandbox (default: generated).
	OrgID string
	// Seed makes IDs and injected faults deterministic when not zero.
	Seed int64
	// TokenTTL is the lifetime of login tokens (default: the sandbox's, 1h).
	TokenTTL time.Duration
	// Faults are injected into API calls from the start.
	Faults sandbox.Faults
	// Strict selects the less kind reading of the Dfns docs, behaviour by behaviour
	// (--strict, --strict-behaviours; internal/dfns/sandbox documents each).
	Strict sandbox.Strictness
}

// ParseFlags reads the dfns-sandbox command line. Usage and flag errors go to output; the
// returned error is flag.ErrHelp for -h.
func ParseFlags(args []string, output io.Writer) (Config, error) {
	cfg := Config{}
	fs := flag.NewFlagSet("dfns-sandbox", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.Listen, "listen", DefaultListen, "address to serve (host:port; port 0 picks a free one)")
	fs.StringVar(&cfg.BootstrapDir, "bootstrap-dir", "", "directory that receives the admin user's credentials (required)")
	fs.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "serve plain HTTP instead of HTTPS")
	fs.StringVar(&cfg.StateFile, "state-file", "", "file that keeps the sandbox state across restarts")
	fs.StringVar(&cfg.OrgID, "org-id", "", "organisation ID of a new sandbox (default: generated)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed for IDs and injected faults (0: random)")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", 0, "lifetime of login tokens (default 1h)")
	fs.DurationVar(&cfg.Faults.Latency, "latency", 0, "latency added to every API call, e.g. 20ms")
	fs.Float64Var(&cfg.Faults.ErrorRate, "error-rate", 0, "share (0..1) of API calls that get a fault")
	kinds := fs.String("fault-kinds", "", "comma-separated fault kinds to inject (default all): "+kindNames())
	ops := fs.String("fault-operations", "",
		"comma-separated operations that get faults (default all), e.g. CreateServiceAccount")
	strictAll := fs.Bool("strict", false,
		"the less kind reading of the Dfns docs for every behaviour (same as --strict-behaviours all)")
	behaviours := fs.String("strict-behaviours", "", "comma-separated behaviours to read strictly (default none): "+
		strings.Join(sandbox.StrictnessNames(), ",")+", or all")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.Faults.Kinds, err = parseKinds(*kinds); err != nil {
		return Config{}, err
	}
	cfg.Faults.Operations = splitList(*ops)
	names := splitList(*behaviours)
	if *strictAll {
		names = append(names, sandbox.StrictAllName)
	}
	if cfg.Strict, err = sandbox.ParseStrictness(names); err != nil {
		return Config{}, fmt.Errorf("--strict-behaviours: %w", err)
	}
	return cfg, cfg.Validate()
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.BootstrapDir == "" {
		return errors.New("--bootstrap-dir is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want host:port", c.Listen)
	}
	if c.Faults.ErrorRate < 0 || c.Faults.ErrorRate > 1 {
		return fmt.Errorf("--error-rate %v: want a number between 0 and 1", c.Faults.ErrorRate)
	}
	if c.Faults.Latency < 0 {
		return fmt.Errorf("--latency %v: must not be negative", c.Faults.Latency)
	}
	if c.TokenTTL < 0 {
		return fmt.Errorf("--token-ttl %v: must not be negative", c.TokenTTL)
	}
	return nil
}

func parseKinds(s string) ([]sandbox.FaultKind, error) {
	var kinds []sandbox.FaultKind
	for _, name := range splitList(s) {
		k := sandbox.FaultKind(name)
		if !slices.Contains(faultKinds, k) {
			return nil, fmt.Errorf("--fault-kinds: unknown kind %q (known: %s)", name, kindNames())
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

func kindNames() string {
	names := make([]string, len(faultKinds))
	for i, k := range faultKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ",")
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
