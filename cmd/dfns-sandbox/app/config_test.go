package app

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dfns-operator/dfns-operator/internal/dfns/sandbox"
)

const (
	flagBootstrap = "--bootstrap-dir"
	flagListen    = "--listen"
)

func TestParseFlags(t *testing.T) {
	cases := map[string]struct {
		reason  string
		args    []string
		want    Config
		wantErr string
	}{
		"Defaults": {
			reason: "only --bootstrap-dir is required; the listen address defaults to 127.0.0.1:8443 and no faults are set",
			args:   []string{flagBootstrap, "/b"},
			want:   Config{Listen: DefaultListen, BootstrapDir: "/b"},
		},
		"Everything": {
			reason: "every flag maps to its Config field, fault kinds and operations are comma lists with blanks ignored",
			args: []string{
				flagListen, anyPort, flagBootstrap, "/b", "--insecure-http", "--state-file", "/s.json",
				"--org-id", "or-aaaaa-bbbbb-cccccccccccccc", "--seed", "42", "--token-ttl", "5m",
				"--latency", "20ms", "--error-rate", "0.2", "--fault-kinds", "internal, rate-limited,,answer-lost",
				"--fault-operations", "CreateServiceAccount,Login",
			},
			want: Config{
				Listen: anyPort, BootstrapDir: "/b", InsecureHTTP: true, StateFile: "/s.json",
				OrgID: "or-aaaaa-bbbbb-cccccccccccccc", Seed: 42, TokenTTL: 5 * time.Minute,
				Faults: sandbox.Faults{
					Latency: 20 * time.Millisecond, ErrorRate: 0.2,
					Kinds:      []sandbox.FaultKind{sandbox.FaultInternal, sandbox.FaultRateLimited, sandbox.FaultAnswerLost},
					Operations: []string{"CreateServiceAccount", "Login"},
				},
			},
		},
		"StrictAll": {
			reason: "--strict turns on every strict behaviour",
			args:   []string{flagBootstrap, "/b", "--strict"},
			want:   Config{Listen: DefaultListen, BootstrapDir: "/b", Strict: sandbox.StrictAll()},
		},
		"StrictBehaviours": {
			reason: "--strict-behaviours is a comma list of behaviour names, blanks ignored",
			args:   []string{flagBootstrap, "/b", "--strict-behaviours", "archive, input,,hold-creates"},
			want: Config{Listen: DefaultListen, BootstrapDir: "/b", Strict: sandbox.Strictness{
				ArchiveKeepsListed: true, StrictInput: true, HoldCreates: true,
			}},
		},
		"StrictBehavioursAll": {
			reason: "--strict-behaviours all is --strict",
			args:   []string{flagBootstrap, "/b", "--strict-behaviours", "all"},
			want:   Config{Listen: DefaultListen, BootstrapDir: "/b", Strict: sandbox.StrictAll()},
		},
		"StrictAndBehaviours": {
			reason: "--strict with --strict-behaviours is still every behaviour",
			args:   []string{flagBootstrap, "/b", "--strict-behaviours", "archive", "--strict"},
			want:   Config{Listen: DefaultListen, BootstrapDir: "/b", Strict: sandbox.StrictAll()},
		},
		"UnknownStrictBehaviour": {
			reason:  "a misspelt behaviour must not silently stay kind",
			args:    []string{flagBootstrap, "/b", "--strict-behaviours", "archive,archived"},
			wantErr: `unknown strict behaviour "archived"`,
		},
		"MissingBootstrapDir": {
			reason:  "without a bootstrap directory nobody could use the sandbox",
			args:    []string{flagListen, anyPort},
			wantErr: "--bootstrap-dir is required",
		},
		"UnknownFaultKind": {
			reason:  "a misspelt fault kind must not silently inject nothing",
			args:    []string{flagBootstrap, "/b", "--fault-kinds", "internal,slow"},
			wantErr: `unknown kind "slow"`,
		},
		"ErrorRateAboveOne": {
			reason:  "the error rate is a share of calls",
			args:    []string{flagBootstrap, "/b", "--error-rate", "1.5"},
			wantErr: "--error-rate 1.5",
		},
		"NegativeLatency": {
			reason:  "a negative latency makes no sense",
			args:    []string{flagBootstrap, "/b", "--latency", "-1s"},
			wantErr: "must not be negative",
		},
		"ListenWithoutPort": {
			reason:  "the listen address needs a port (0 for a free one)",
			args:    []string{flagBootstrap, "/b", flagListen, "127.0.0.1"},
			wantErr: "want host:port",
		},
		"PositionalArgument": {
			reason:  "a stray argument is probably a forgotten flag name",
			args:    []string{flagBootstrap, "/b", "extra"},
			wantErr: `unexpected argument "extra"`,
		},
		"UnknownFlag": {
			reason:  "unknown flags are errors",
			args:    []string{flagBootstrap, "/b", "--nope"},
			wantErr: "flag provided but not defined",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nParseFlags(%q) error = %v, want it to contain %q", tc.reason, tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nParseFlags(%q): %v", tc.reason, tc.args, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s\nParseFlags(%q) =\n%+v\nwant\n%+v", tc.reason, tc.args, got, tc.want)
			}
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	var out strings.Builder
	_, err := ParseFlags([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseFlags(-h) error = %v, want flag.ErrHelp", err)
	}
	flags := append([]string{
		"-listen", "-bootstrap-dir", "-insecure-http", "-state-file", "-latency", "-error-rate", "-fault-kinds", "-seed",
		"-strict", "-strict-behaviours",
	}, sandbox.StrictnessNames()...) // -h lists every behaviour name
	for _, name := range flags {
		if !strings.Contains(out.String(), name) {
			t.Errorf("usage does not mention %s:\n%s", name, out.String())
		}
	}
}
