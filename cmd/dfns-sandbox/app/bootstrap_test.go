package app

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/yaml"
)

// secretManifest is the part of a Secret that dfns-credentials.yaml must get right.
type secretManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Type       string            `json:"type"`
	StringData map[string]string `json:"stringData"`
}

func parseManifest(t *testing.T, data []byte) secretManifest {
	t.Helper()
	var m secretManifest
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(&m); err != nil {
		t.Fatalf("manifest is not valid YAML: %v\n%s", err, data)
	}
	return m
}

const testOrg = "or-a"

const (
	testPEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n" +
		"-----END PRIVATE KEY-----\n"
	testCA = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
)

func TestSecretManifestRoundTrips(t *testing.T) {
	cases := map[string]struct {
		reason string
		b      Bootstrap
	}{
		"TLS": {
			reason: "the normal case: PEM key and CA as block scalars, the rest quoted",
			b: Bootstrap{APIURL: "https://127.0.0.1:8443", OrgID: testOrg, Username: "operator@dfns-sandbox.local",
				CredID: "Y2ktYWJj", PrivateKeyPEM: []byte(testPEM), CACertPEM: []byte(testCA)},
		},
		"InsecureHTTP": {
			reason: "no CA: the manifest has no ca.crt key",
			b: Bootstrap{APIURL: "http://127.0.0.1:1", OrgID: testOrg, Username: "u@x.y", CredID: "c",
				PrivateKeyPEM: []byte(testPEM)},
		},
		"AwkwardValues": {
			reason: "values YAML would misread unquoted (colons, hashes, quotes, yes/no) survive exactly",
			b: Bootstrap{APIURL: "https://h:1/#x", OrgID: "yes", Username: `a"b'c: #d`, CredID: "- 1",
				PrivateKeyPEM: []byte("no final newline\nsecond line")},
		},
		"LeadingSpacesAndNewlines": {
			reason: "multi-line values that a literal block cannot hold unchanged are quoted instead",
			b: Bootstrap{APIURL: "u", OrgID: "o", Username: "n", CredID: "c",
				PrivateKeyPEM: []byte("  indented\nline\n\n\n")},
		},
		"SeveralTrailingNewlines": {
			reason: "keep-chomping keeps every final line break",
			b: Bootstrap{APIURL: "u", OrgID: "o", Username: "n", CredID: "c",
				PrivateKeyPEM: []byte("a\nb\n\n\n")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := parseManifest(t, SecretManifest(&tc.b))
			if m.APIVersion != "v1" || m.Kind != "Secret" || m.Type != "Opaque" ||
				m.Metadata.Name != SecretName || m.Metadata.Namespace != SecretNamespace {
				t.Errorf("%s\nheader = %+v, want v1 Secret %s/%s of type Opaque", tc.reason, m, SecretNamespace, SecretName)
			}
			want := map[string]string{}
			for _, e := range tc.b.entries() {
				want[e.name] = string(e.value)
			}
			if !reflect.DeepEqual(m.StringData, want) {
				t.Errorf("%s\nstringData =\n%q\nwant\n%q", tc.reason, m.StringData, want)
			}
		})
	}
}

func TestSecretManifestHeader(t *testing.T) {
	b := Bootstrap{APIURL: "u", OrgID: testOrg, Username: "n", CredID: "c", PrivateKeyPEM: []byte(testPEM)}
	first, _, _ := strings.Cut(string(SecretManifest(&b)), "\n")
	const want = `# The dfns-sandbox admin user's credentials, as the operator reads them ` +
		`(docs/architecture.md, "The operator's credentials").`
	if first != want {
		t.Errorf("the manifest's first line points readers to the credentials layout\ngot  %q\nwant %q", first, want)
	}
}

func TestWriteBootstrapLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "boot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []string{FileCACert, fileAuthToken} {
		if err := os.WriteFile(filepath.Join(dir, stale), []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &Bootstrap{
		APIURL: "http://127.0.0.1:1", OrgID: testOrg, Username: "u@x.y", CredID: "c", PrivateKeyPEM: []byte(testPEM),
	}
	if err := WriteBootstrap(dir, b); err != nil {
		t.Fatal(err)
	}
	assertMode(t, dir, 0o700|os.ModeDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
		assertMode(t, filepath.Join(dir, e.Name()), 0o600)
	}
	want := []string{FileAPIURL, FileCredID, FileOrgID, FilePrivateKey, FileUsername, FileManifest}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("bootstrap files = %q, want %q (stale ca.crt and DFNS_AUTH_TOKEN removed, no temp files)", names, want)
	}
	got, err := ReadBootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("ReadBootstrap = %v, want %v", got, b)
	}
}

func TestBootstrapPrintingHidesKey(t *testing.T) {
	b := &Bootstrap{APIURL: "u", OrgID: "o", Username: "n", CredID: "c", PrivateKeyPEM: []byte(testPEM)}
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%+v", *b), fmt.Sprintf("%v", []*Bootstrap{b})} {
		if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, "MIGH") || !strings.Contains(s, "CredID: c") {
			t.Errorf("printed Bootstrap = %s, want the fields without the private key", s)
		}
	}
}

func TestNewTLSMaterial(t *testing.T) {
	mat, err := NewTLSMaterial("10.1.2.3", "dfns.test", "0.0.0.0", "")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(mat.CACertPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CACertPEM is not a PEM certificate")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA {
		t.Errorf("the CA certificate is not a CA")
	}
	leaf, err := x509.ParseCertificate(mat.Certificate.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	cases := map[string]struct {
		reason string
		host   string
		valid  bool
	}{
		"IPv4Loopback":  {"clients dial 127.0.0.1", loopbackIPv4, true},
		"IPv6Loopback":  {"clients may dial ::1", "::1", true},
		"Localhost":     {"clients may dial localhost", localhost, true},
		"ListenIP":      {"the listen host, when an IP, is a SAN", "10.1.2.3", true},
		"ListenName":    {"the listen host, when a name, is a SAN", "dfns.test", true},
		"Wildcard":      {"0.0.0.0 is not a name a client can verify", "0.0.0.0", false},
		"OtherHostname": {"nothing else is trusted", "api.dfns.io", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			opts := x509.VerifyOptions{Roots: roots, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			_, err := leaf.Verify(opts)
			if (err == nil) != tc.valid {
				t.Errorf("%s\nVerify(%s) error = %v, want valid=%v", tc.reason, tc.host, err, tc.valid)
			}
		})
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != want {
		t.Errorf("%s mode = %v, want %v", filepath.Base(path), got, want)
	}
}
