//go:build e2e

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

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// replica is a manager process of the leader-election spec, its output in its own log.
type replica struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// reconciling reports whether the replica has started its controllers, which only the leader
// does.
func (r *replica) reconciling() bool {
	b, _ := os.ReadFile(r.log)
	return strings.Contains(string(b), "Starting workers")
}

func startReplica(name string) *replica {
	GinkgoHelper()
	log := filepath.Join(h.Work, name+".log")
	f, err := os.Create(log)
	Expect(err).NotTo(HaveOccurred())
	// The harness turns leader election off for its single manager; a later flag wins.
	cmd := managerCommand(h.ManagerArgs("--sync-period", "5s", "--health-probe-bind-address", freeAddr(),
		"--leader-elect=true")...)
	cmd.Stdout, cmd.Stderr = f, f
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = f.Close()
	})
	return &replica{name: name, cmd: cmd, log: log}
}

// permissionYAML is a DfnsPermission manifest.
func permissionYAML(name string) string {
	return fmt.Sprintf(`apiVersion: access.dfns.io/v1alpha1
kind: DfnsPermission
metadata: {name: %s}
spec:
  operations: [Wallets:Read]
`, name)
}

var _ = Describe("Two managers with leader election (the manager's default)", Ordered, func() {
	It("lets one reconcile, and the other take over within seconds when it stops", func() {
		killManager()
		DeferCleanup(startManager)
		replicas := []*replica{startReplica("replica-a"), startReplica("replica-b")}

		By("electing one leader")
		var leader, standby *replica
		Eventually(func() int {
			n := 0
			for _, r := range replicas {
				if r.reconciling() {
					n++
					leader = r
				}
			}
			return n
		}).WithTimeout(60 * time.Second).Should(Equal(1))
		standby = replicas[0]
		if standby == leader {
			standby = replicas[1]
		}
		Consistently(standby.reconciling).WithTimeout(3*time.Second).Should(BeFalse(),
			"the standby %s must not start its controllers while %s leads", standby.name, leader.name)

		By("reconciling through the leader")
		createNamespace("leader")
		kubectlIn(permissionYAML("before"), "apply", "-n", "leader", "-f", "-")
		kubectl("wait", "--for=condition=Ready", "dfnspermission/before", "-n", "leader", "--timeout=60s")

		By("handing over when the leader stops on SIGTERM, as in a rollout")
		Expect(leader.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		stopped := time.Now()
		_ = leader.cmd.Wait()
		// The leader releases its Lease as it stops; without that, the standby would wait for
		// the Lease to expire (15 s).
		Eventually(standby.reconciling).WithTimeout(12 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTrue())
		_, _ = fmt.Fprintf(GinkgoWriter, "%s took over %v after %s got SIGTERM\n", standby.name,
			time.Since(stopped).Round(100*time.Millisecond), leader.name)
		kubectlIn(permissionYAML("after"), "apply", "-n", "leader", "-f", "-")
		kubectl("wait", "--for=condition=Ready", "dfnspermission/after", "-n", "leader", "--timeout=60s")
	})
})
