/*
Copyright 2026 The dfns-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command kubectl-dfns is a kubectl plugin for the resources of dfns-operator: `kubectl dfns
// status KIND/NAME` shows a resource with its conditions, Secret keys, connection, related
// resources and events; `kubectl dfns rotate KIND/NAME` asks for a rotation; `kubectl dfns
// approvals` lists the changes Dfns policies hold for approval. See README.md, "kubectl plugin".
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dfns-operator/dfns-operator/api/v1alpha1"
)

// defaultOperatorNamespace is where the manifests install the operator; a
// ClusterDfnsConnection's credentials Secret is there.
const defaultOperatorNamespace = "dfns-system"

func main() {
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}).ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

// plugin holds what every command needs: a client, where to write, the time and the namespace.
type plugin struct {
	c                 client.Client
	out               *output
	now               time.Time
	namespace         string
	operatorNamespace string
}

// newPlugin makes a plugin that reads the cluster of cfg, in namespace, and writes to out.
func newPlugin(cfg *rest.Config, namespace string, out io.Writer) (*plugin, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &plugin{c: c, out: &output{w: out}, now: time.Now(), namespace: namespace,
		operatorNamespace: defaultOperatorNamespace}, nil
}

// newRootCommand is `kubectl dfns` with kubectl's connection flags (--kubeconfig, --context,
// -n, --as, …) and its three commands.
func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	config := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-dfns",
		Short: "Status, rotation and approvals of dfns-operator resources",
		Long: "Status, rotation and approvals of dfns-operator resources.\n\n" +
			"KIND is a kind of access.dfns.io as kubectl accepts it: DfnsServiceAccount, dfnsserviceaccounts or dfnssa.",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl dfns"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// kubectl completes plugins through a kubectl_complete-dfns script, not cobra's command.
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	config.AddFlags(root.PersistentFlags())
	connect := func() (*plugin, error) {
		cfg, err := config.ToRESTConfig()
		if err != nil {
			return nil, err
		}
		ns, _, err := config.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, err
		}
		return newPlugin(cfg, ns, streams.Out)
	}
	// report prints an error as kubectl does and returns it, so that the exit code is 1.
	report := func(err error) error {
		if err != nil {
			_, _ = fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
		}
		return err
	}

	operatorNamespace := defaultOperatorNamespace
	status := &cobra.Command{
		Use:   "status KIND/NAME",
		Short: "Show a resource, its conditions, Secret keys, connection, related resources and events",
		Example: "  kubectl dfns status dfnssa/payments-api -n team-a\n" +
			"  kubectl dfns status clusterdfnsconnection default",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, name, err := parseRef(args)
			if err != nil {
				return report(err)
			}
			p, err := connect()
			if err != nil {
				return report(err)
			}
			p.operatorNamespace = operatorNamespace
			return report(p.status(cmd.Context(), k, name))
		},
	}
	status.Flags().StringVar(&operatorNamespace, "operator-namespace", defaultOperatorNamespace,
		"the operator's namespace, where a ClusterDfnsConnection's credentials Secret is")

	rotate := &cobra.Command{
		Use:   "rotate KIND/NAME",
		Short: "Rotate the token or secret of a DfnsServiceAccount, DfnsPersonalAccessToken or DfnsWebhook once",
		Long: "Sets the access.dfns.io/rotate annotation to a new value (the current time): the operator mints a new " +
			"identity or webhook, writes the Secret, restarts the rolloutRestartTargets and retires the previous one " +
			"after its grace period.",
		Example: "  kubectl dfns rotate dfnssa/payments-api -n team-a",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, name, err := parseRef(args)
			if err != nil {
				return report(err)
			}
			p, err := connect()
			if err != nil {
				return report(err)
			}
			return report(p.rotate(cmd.Context(), k, name))
		},
	}

	var allNamespaces bool
	approvals := &cobra.Command{
		Use:     "approvals",
		Short:   "List the resources whose changes Dfns policies hold for approval, with the approval IDs",
		Example: "  kubectl dfns approvals -A",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := connect()
			if err != nil {
				return report(err)
			}
			return report(p.approvals(cmd.Context(), allNamespaces))
		},
	}
	approvals.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list the resources of every namespace")

	root.AddCommand(status, rotate, approvals)
	return root
}
