// Command dfns-sandbox serves a local, in-memory Dfns (internal/dfns/sandbox) over HTTPS
// with a CA it generates, and writes an admin user's credentials into --bootstrap-dir in the
// layout the operator reads, plus the same as the Secret manifest dfns-credentials.yaml.
//
//	dfns-sandbox --listen 127.0.0.1:8443 --bootstrap-dir DIR [--insecure-http] [--state-file F]
//	             [--latency 20ms] [--error-rate 0.2] [--fault-kinds internal,rate-limited] [--seed N]
//	             [--strict | --strict-behaviours archive,no-approval-id,...]
//
// By default the sandbox takes the kindest reading wherever the Dfns docs leave behaviour
// open. --strict takes the less kind reading of every such behaviour; --strict-behaviours
// takes it for the listed ones only (archive, no-approval-id, empty-cred-id, policy-defaults,
// pending-listed, approver-force, input, challenge-spent, invitations, hold-creates, or all);
// the two add up. The package documentation of internal/dfns/sandbox and
// docs/dfns-compatibility.md describe each behaviour. A test can change them while the
// sandbox runs with PUT /sandbox/strict (a JSON list of names; GET reads it back); the state
// file never keeps them.
//
// It prints one line when it serves and stops cleanly on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/dfns-operator/dfns-operator/cmd/dfns-sandbox/app"
)

func main() {
	cfg, err := app.ParseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dfns-sandbox:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := app.Run(ctx, cfg, os.Stdout, log.New(os.Stderr, "dfns-sandbox: ", log.LstdFlags)); err != nil {
		fmt.Fprintln(os.Stderr, "dfns-sandbox:", err)
		stop()
		os.Exit(1)
	}
}
