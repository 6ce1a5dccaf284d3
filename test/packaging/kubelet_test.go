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

package packaging

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// No kubelet runs here, so this models the documented rule for the files of Secret, ConfigMap
// and projected volumes: each file is owned by root; its group is the pod's fsGroup when one is
// set, root otherwise; its mode is the item's mode or the volume's defaultMode (0644 when
// unset), and with an fsGroup the kubelet adds group read (these volumes are read-only, so the
// mask is 0440).

// volumeFile is the owner, group and mode the kubelet gives a volume's files.
type volumeFile struct {
	uid, gid int64
	mode     os.FileMode
}

// kubeletFile applies the rule to a volume's defaultMode and the pod's fsGroup.
func kubeletFile(defaultMode *int32, fsGroup *int64) volumeFile {
	f := volumeFile{mode: 0o644}
	if defaultMode != nil {
		f.mode = os.FileMode(*defaultMode)
	}
	if fsGroup != nil {
		f.gid = *fsGroup
		f.mode |= 0o440
	}
	return f
}

// identity is who the container's process runs as.
type identity struct {
	uid    int64
	groups []int64
}

// readable reports whether the process can read the file.
func (p identity) readable(f volumeFile) bool {
	switch {
	case p.uid == f.uid:
		return f.mode&0o400 != 0
	case slices.Contains(p.groups, f.gid):
		return f.mode&0o040 != 0
	}
	return f.mode&0o004 != 0
}

// imageUser is the user and group the Dockerfile's USER line names.
func imageUser(t *testing.T) (uid, gid int64) {
	t.Helper()
	file, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = file.Close() }()
	user := ""
	for s := bufio.NewScanner(file); s.Scan(); {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "USER "); ok {
			user = strings.TrimSpace(rest)
		}
	}
	u, g, _ := strings.Cut(user, ":")
	uid, err = strconv.ParseInt(u, 10, 64)
	if err != nil {
		t.Fatalf("the Dockerfile's USER %q is not numeric", user)
	}
	gid = uid
	if g != "" {
		if gid, err = strconv.ParseInt(g, 10, 64); err != nil {
			t.Fatalf("the Dockerfile's USER %q has a group that is not numeric", user)
		}
	}
	return uid, gid
}

// processOf is the identity of the pod's first container: the security contexts' runAsUser and
// runAsGroup, else the image's USER, with the fsGroup and supplemental groups.
func processOf(t *testing.T, pod corev1.PodSpec) identity {
	t.Helper()
	uid, gid := imageUser(t)
	var groups []int64
	if psc := pod.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		if psc.RunAsGroup != nil {
			gid = *psc.RunAsGroup
		}
		if psc.FSGroup != nil {
			groups = append(groups, *psc.FSGroup)
		}
		groups = append(groups, psc.SupplementalGroups...)
	}
	if sc := pod.Containers[0].SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
	}
	return identity{uid: uid, groups: append(groups, gid)}
}

// TestKubeletModel: the rule as the kubelet documents it, on the cases that matter here.
func TestKubeletModel(t *testing.T) {
	mode := func(m int32) *int32 { return &m }
	group := func(g int64) *int64 { return &g }
	manager := identity{uid: 65532, groups: []int64{65532}}
	for name, tc := range map[string]struct {
		defaultMode *int32
		fsGroup     *int64
		want        bool
	}{
		"0400 without fsGroup: root-only":           {mode(0o400), nil, false},
		"0400 with fsGroup: group read added":       {mode(0o400), group(65532), true},
		"0440 with fsGroup":                         {mode(0o440), group(65532), true},
		"default 0644 without fsGroup: world read":  {nil, nil, true},
		"0440 with another fsGroup: not the caller": {mode(0o440), group(1000), false},
	} {
		if got := manager.readable(kubeletFile(tc.defaultMode, tc.fsGroup)); got != tc.want {
			t.Errorf("%s: readable = %t, want %t", name, got, tc.want)
		}
	}
}

// TestManagerReadsItsVolumes: every Secret or ConfigMap volume the manager mounts is readable by
// the user it runs as, under the kubelet's rule, and not by other users; the metrics
// certificate's too.
func TestManagerReadsItsVolumes(t *testing.T) {
	all := renders(t)
	all["helm with a metrics certificate"] = helmTemplate(t, "--set", "metrics.certManager.enabled=true")
	for name, r := range all {
		t.Run(name, func(t *testing.T) {
			d := as[appsv1.Deployment](t, r["Deployment"][0])
			pod := d.Spec.Template.Spec
			proc := processOf(t, pod)
			mounted := map[string]bool{}
			for _, m := range pod.Containers[0].VolumeMounts {
				mounted[m.Name] = true
			}
			var fsGroup *int64
			if pod.SecurityContext != nil {
				fsGroup = pod.SecurityContext.FSGroup
			}
			checked := 0
			for _, v := range pod.Volumes {
				var defaultMode *int32
				switch {
				case !mounted[v.Name]:
					continue
				case v.Secret != nil:
					defaultMode = v.Secret.DefaultMode
				case v.ConfigMap != nil:
					defaultMode = v.ConfigMap.DefaultMode
				default:
					continue
				}
				checked++
				f := kubeletFile(defaultMode, fsGroup)
				if !proc.readable(f) {
					t.Errorf("volume %s: files %d:%d mode %#o are not readable by the manager (uid %d, groups %v)",
						v.Name, f.uid, f.gid, f.mode, proc.uid, proc.groups)
				}
				if f.mode&0o007 != 0 {
					t.Errorf("volume %s: mode %#o lets every user of the node read it", v.Name, f.mode)
				}
			}
			if checked == 0 {
				t.Error("the manager mounts no Secret or ConfigMap volume")
			}
		})
	}
}
