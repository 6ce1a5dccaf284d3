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

// Command envtest-up runs a local control plane (etcd + kube-apiserver, as envtest starts them)
// until it is signalled, and writes an admin kubeconfig for it. `make demo` and the e2e tests use
// it where no kind cluster or container engine exists.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	// The flag is not called --kubeconfig: controller-runtime registers that name on the default
	// flag set in an init function.
	out := flag.String("kubeconfig-out", "bin/envtest.kubeconfig", "Where to write the admin kubeconfig.")
	crds := flag.String("crds", "", "Directory of CRDs to install at start (optional).")
	flag.Parse()
	if err := run(*out, *crds); err != nil {
		fmt.Fprintln(os.Stderr, "envtest-up:", err)
		os.Exit(1)
	}
}

func run(out, crds string) error {
	env := &envtest.Environment{}
	if crds != "" {
		env.CRDDirectoryPaths = []string{crds}
		env.ErrorIfCRDPathMissing = true
	}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	// Stop the control plane on every path out, or etcd and kube-apiserver outlive us.
	defer func() { _ = env.Stop() }()

	user, err := env.AddUser(envtest.User{Name: "envtest-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the kubeconfig: %w", err)
	}
	if err := os.WriteFile(out, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	fmt.Printf("control plane up kubeconfig=%s\n", out)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}
