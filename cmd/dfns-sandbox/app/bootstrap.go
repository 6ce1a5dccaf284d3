package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Names of the files in the bootstrap directory: the credentials layout of
// docs/architecture.md, "The operator's credentials", plus the same credentials as a Secret
// manifest.
const (
	FileAPIURL     = "DFNS_API_URL"
	FileOrgID      = "DFNS_ORG_ID"
	FileUsername   = "DFNS_USERNAME"
	FileCredID     = "DFNS_CRED_ID"
	FilePrivateKey = "DFNS_PRIVATE_KEY"
	FileCACert     = "ca.crt"
	FileManifest   = "dfns-credentials.yaml"

	// fileAuthToken is never written: a stale one would switch the operator to token mode.
	fileAuthToken = "DFNS_AUTH_TOKEN"
)

// The Secret the manifest describes (docs/architecture.md, "The operator's credentials", and
// config/manager).
const (
	SecretName      = "dfns-credentials"
	SecretNamespace = "dfns-system"
)

// AdminEmail is the e-mail (and username) of the admin user the sandbox bootstraps.
const AdminEmail = "operator@dfns-sandbox.local"

// Bootstrap holds the admin user's credentials as they are published in the bootstrap
// directory. Its String method hides the private key.
type Bootstrap struct {
	APIURL        string
	OrgID         string
	Username      string
	CredID        string
	PrivateKeyPEM []byte
	// CACertPEM is the CA of the sandbox's TLS; empty when serving plain HTTP.
	CACertPEM []byte
}

// String describes the bootstrap without the private key.
func (b Bootstrap) String() string {
	return fmt.Sprintf("Bootstrap{APIURL: %s, OrgID: %s, Username: %s, CredID: %s}",
		b.APIURL, b.OrgID, b.Username, b.CredID)
}

type entry struct {
	name  string
	value []byte
}

// entries lists the credential files in the order they are written and shown.
func (b *Bootstrap) entries() []entry {
	es := []entry{
		{FileAPIURL, []byte(b.APIURL)},
		{FileOrgID, []byte(b.OrgID)},
		{FileUsername, []byte(b.Username)},
		{FileCredID, []byte(b.CredID)},
		{FilePrivateKey, b.PrivateKeyPEM},
	}
	if len(b.CACertPEM) > 0 {
		es = append(es, entry{FileCACert, b.CACertPEM})
	}
	return es
}

// WriteBootstrap writes the credential files and dfns-credentials.yaml into dir (created
// 0700; files 0600, each replaced atomically). A ca.crt or DFNS_AUTH_TOKEN left by an earlier
// run that does not belong to these credentials is removed.
func WriteBootstrap(dir string, b *Bootstrap) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create bootstrap directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict bootstrap directory: %w", err)
	}
	for _, e := range b.entries() {
		if err := writeFileAtomic(dir, e.name, e.value); err != nil {
			return err
		}
	}
	stale := []string{fileAuthToken}
	if len(b.CACertPEM) == 0 {
		stale = append(stale, FileCACert)
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", name, err)
		}
	}
	return writeFileAtomic(dir, FileManifest, SecretManifest(b))
}

func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// ReadBootstrap reads the credential files an earlier run wrote into dir.
func ReadBootstrap(dir string) (*Bootstrap, error) {
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read bootstrap %s: %w", name, err)
		}
		return data, nil
	}
	b := &Bootstrap{}
	for name, dst := range map[string]*string{
		FileAPIURL: &b.APIURL, FileOrgID: &b.OrgID, FileUsername: &b.Username, FileCredID: &b.CredID,
	} {
		data, err := read(name)
		if err != nil {
			return nil, err
		}
		*dst = strings.TrimSpace(string(data))
	}
	var err error
	if b.PrivateKeyPEM, err = read(FilePrivateKey); err != nil {
		return nil, err
	}
	if b.CACertPEM, err = os.ReadFile(filepath.Join(dir, FileCACert)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read bootstrap %s: %w", FileCACert, err)
	}
	return b, nil
}

// SecretManifest renders the credentials as the Kubernetes Secret dfns-credentials in
// namespace dfns-system, with one stringData key per credential file. Single-line values are
// double-quoted YAML strings; PEM values are literal block scalars.
func SecretManifest(b *Bootstrap) []byte {
	var buf bytes.Buffer
	buf.WriteString("# The dfns-sandbox admin user's credentials, as the operator reads them " +
		"(docs/architecture.md, \"The operator's credentials\").\n")
	buf.WriteString("# It holds a private key: keep it out of version control.\n")
	buf.WriteString("apiVersion: v1\nkind: Secret\nmetadata:\n")
	fmt.Fprintf(&buf, "  name: %s\n  namespace: %s\n", SecretName, SecretNamespace)
	buf.WriteString("  labels:\n")
	buf.WriteString("    app.kubernetes.io/name: dfns-operator\n    app.kubernetes.io/created-by: dfns-sandbox\n")
	buf.WriteString("type: Opaque\nstringData:\n")
	for _, e := range b.entries() {
		writeYAMLValue(&buf, e.name, string(e.value))
	}
	return buf.Bytes()
}

// writeYAMLValue writes `  key: value` at indentation 2. A multi-line value whose lines are
// plain text (PEM) becomes a literal block scalar; any other value becomes a JSON string, which
// YAML reads as a double-quoted scalar with the same bytes.
func writeYAMLValue(buf *bytes.Buffer, key, value string) {
	body := strings.TrimRight(value, "\n")
	if !blockSafe(body) {
		quoted, _ := json.Marshal(value) // a string always marshals
		fmt.Fprintf(buf, "  %s: %s\n", key, quoted)
		return
	}
	// Chomping: "|-" keeps no final line break, "|" exactly one, "|+" all of them.
	header, extra := "|-", 0
	switch n := len(value) - len(body); {
	case n == 1:
		header = "|"
	case n > 1:
		header, extra = "|+", n-1
	}
	fmt.Fprintf(buf, "  %s: %s\n", key, header)
	for line := range strings.SplitSeq(body, "\n") {
		fmt.Fprintf(buf, "    %s\n", line)
	}
	buf.WriteString(strings.Repeat("\n", extra))
}

// blockSafe reports whether value can be a literal block scalar unchanged: more than one line,
// each non-empty, printable ASCII and not starting with a space.
func blockSafe(value string) bool {
	lines := strings.Split(value, "\n")
	if len(lines) < 2 {
		return false
	}
	for _, line := range lines {
		if line == "" || line[0] == ' ' {
			return false
		}
		for i := 0; i < len(line); i++ {
			if line[i] < 0x20 || line[i] > 0x7e {
				return false
			}
		}
	}
	return true
}
