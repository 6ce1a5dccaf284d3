package dfns

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Names of the files in a credentials directory (docs/architecture.md, "The operator's
// credentials").
const (
	FileAPIURL     = "DFNS_API_URL"
	FileOrgID      = "DFNS_ORG_ID"
	FileUsername   = "DFNS_USERNAME"
	FileCredID     = "DFNS_CRED_ID"
	FilePrivateKey = "DFNS_PRIVATE_KEY"
	FileAuthToken  = "DFNS_AUTH_TOKEN"
	FileCACert     = "ca.crt"
)

// DefaultAPIURL is the Dfns API used when the credentials name none.
const DefaultAPIURL = "https://api.dfns.io"

// maxCredentialFileSize bounds what is read from one credentials file.
const maxCredentialFileSize = 1 << 20

// credentialFiles lists every file LoadCredentials reads, in a fixed order.
var credentialFiles = []string{
	FileAPIURL, FileOrgID, FileUsername, FileCredID, FilePrivateKey, FileAuthToken, FileCACert,
}

// CredentialsMode says how the client obtains its bearer token.
type CredentialsMode string

const (
	// ModeLogin logs in as DFNS_USERNAME with the Key credential DFNS_CRED_ID/DFNS_PRIVATE_KEY.
	ModeLogin CredentialsMode = "Login"
	// ModeToken uses DFNS_AUTH_TOKEN (a service-account token or a PAT) as is.
	ModeToken CredentialsMode = "Token"
)

// Credentials is the operator's Dfns identity. Its String method hides every secret, so a
// Credentials value printed by mistake leaks nothing.
type Credentials struct {
	// APIURL is the Dfns base URL without a trailing slash.
	APIURL string
	// OrgID is the org, from DFNS_ORG_ID or the token's org claim.
	OrgID string
	// Username is the user to log in as (login mode only).
	Username string
	// CredID is the Key credential's id that signs logins and user actions.
	CredID string
	// PrivateKeyPEM is the Key credential's private key.
	PrivateKeyPEM []byte
	// AuthToken is the bearer token (token mode only).
	AuthToken string
	// CACertPEM holds extra CA certificates for the API's TLS, if any.
	CACertPEM []byte
}

// String describes the credentials without any secret value. Its value receiver covers both
// Credentials and *Credentials in fmt.
func (c Credentials) String() string {
	return fmt.Sprintf("dfns credentials (mode %s, api %s, org %s, credId set %t, key set %t, token set %t)",
		c.Mode(), c.APIURL, c.OrgID, c.CredID != "", len(c.PrivateKeyPEM) > 0, c.AuthToken != "")
}

// GoString is String, so that %#v leaks nothing either.
func (c Credentials) GoString() string { return c.String() }

// Mode reports login mode when a username is set, token mode otherwise.
func (c *Credentials) Mode() CredentialsMode {
	if c.Username != "" {
		return ModeLogin
	}
	return ModeToken
}

// CanSign reports whether the credentials hold a Key credential for user actions.
func (c *Credentials) CanSign() bool {
	return c.CredID != "" && len(c.PrivateKeyPEM) > 0
}

// Validate checks that the credentials are complete and consistent, fills in the defaults
// (API URL, org ID from the token) and parses the private key. Errors name the file at fault
// and never quote a value.
func (c *Credentials) Validate() error {
	if err := c.validateURL(); err != nil {
		return err
	}
	if err := c.validateMode(); err != nil {
		return err
	}
	if err := c.validateKey(); err != nil {
		return err
	}
	if err := c.validateOrg(); err != nil {
		return err
	}
	return c.validateCA()
}

func (c *Credentials) validateURL() error {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s: not an absolute http(s) URL", FileAPIURL)
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	return nil
}

func (c *Credentials) validateMode() error {
	switch {
	case c.Username != "" && c.AuthToken != "":
		return fmt.Errorf("%s and %s are both set: use one (login mode or token mode)", FileUsername, FileAuthToken)
	case c.Username != "":
		if c.CredID == "" {
			return fmt.Errorf("%s: missing (login mode needs the Key credential)", FileCredID)
		}
		if len(c.PrivateKeyPEM) == 0 {
			return fmt.Errorf("%s: missing (login mode needs the Key credential)", FilePrivateKey)
		}
		if c.OrgID == "" {
			return fmt.Errorf("%s: missing (login mode needs the org ID)", FileOrgID)
		}
	case c.AuthToken != "":
		if c.CredID != "" && len(c.PrivateKeyPEM) == 0 {
			return fmt.Errorf("%s: missing while %s is set", FilePrivateKey, FileCredID)
		}
		if c.CredID == "" && len(c.PrivateKeyPEM) > 0 {
			return fmt.Errorf("%s: missing while %s is set", FileCredID, FilePrivateKey)
		}
	default:
		return fmt.Errorf("neither %s (login mode) nor %s (token mode) is set", FileUsername, FileAuthToken)
	}
	return nil
}

func (c *Credentials) validateKey() error {
	if len(c.PrivateKeyPEM) == 0 {
		return nil
	}
	if _, err := parsePrivateKey(c.PrivateKeyPEM); err != nil {
		return fmt.Errorf("%s: %w", FilePrivateKey, err)
	}
	return nil
}

func (c *Credentials) validateOrg() error {
	if c.OrgID != "" || c.AuthToken == "" {
		return nil
	}
	claims, err := decodeClaims(c.AuthToken)
	if err != nil {
		return fmt.Errorf("%s: missing, and %s is not a readable JWT: %w", FileOrgID, FileAuthToken, err)
	}
	if claims.orgID() == "" {
		return fmt.Errorf("%s: missing, and %s carries no org claim", FileOrgID, FileAuthToken)
	}
	c.OrgID = claims.orgID()
	return nil
}

func (c *Credentials) validateCA() error {
	if len(c.CACertPEM) == 0 {
		return nil
	}
	if !x509.NewCertPool().AppendCertsFromPEM(c.CACertPEM) {
		return fmt.Errorf("%s: no PEM certificate found", FileCACert)
	}
	return nil
}

// LoadCredentials reads and validates a credentials directory (docs/architecture.md, "The
// operator's credentials"): one file per key, values trimmed of surrounding white space. A
// missing or malformed file gives an error naming the file and what is wrong, never its
// content.
func LoadCredentials(dir string) (*Credentials, error) {
	files, err := readCredentialFiles(dir)
	if err != nil {
		return nil, err
	}
	return credentialsFromFiles(files)
}

// CredentialsFromData reads and validates credentials held as the keys of a Secret, the same
// keys as the files of a credentials directory. Errors name the key, never its value.
func CredentialsFromData(data map[string][]byte) (*Credentials, error) {
	return credentialsFromFiles(data)
}

func credentialsFromFiles(files map[string][]byte) (*Credentials, error) {
	text := func(name string) string { return strings.TrimSpace(string(files[name])) }
	c := &Credentials{
		APIURL:        text(FileAPIURL),
		OrgID:         text(FileOrgID),
		Username:      text(FileUsername),
		CredID:        text(FileCredID),
		PrivateKeyPEM: normalizePEM(files[FilePrivateKey]),
		AuthToken:     text(FileAuthToken),
		CACertPEM:     bytes.TrimSpace(files[FileCACert]),
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// normalizePEM trims a PEM value and turns literal "\n" sequences into new lines, the way some
// Dfns examples store keys in one-line environment variables.
func normalizePEM(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	if !bytes.Contains(b, []byte("\n")) && bytes.Contains(b, []byte(`\n`)) {
		b = bytes.ReplaceAll(b, []byte(`\n`), []byte("\n"))
	}
	return b
}

// kubeletData is the symlink through which the kubelet replaces all the files of a mounted
// Secret at once: dir/KEY links to ..data/KEY, and ..data to the current version's directory.
const kubeletData = "..data"

// readCredentialFiles returns the content of every credentials file present in dir. In a
// mounted Secret's layout, every file is read from the one version ..data names, read again if
// ..data moved meanwhile: file by file through dir, a swap in the middle of the read would mix
// the credential ID of one version with the key of another (as a rotation's swap would).
func readCredentialFiles(dir string) (map[string][]byte, error) {
	info, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("credentials directory %s: does not exist", dir)
		}
		return nil, fmt.Errorf("credentials directory %s: %w", dir, bareError(err))
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("credentials directory %s: not a directory", dir)
	}
	for range 3 {
		version, err := filepath.EvalSymlinks(filepath.Join(dir, kubeletData))
		if err != nil {
			break // not a mounted Secret's layout
		}
		files, err := readFilesIn(version)
		if again, aerr := filepath.EvalSymlinks(filepath.Join(dir, kubeletData)); aerr == nil && again == version {
			return files, err
		}
	}
	return readFilesIn(dir)
}

// readFilesIn reads the credentials files present in dir.
func readFilesIn(dir string) (map[string][]byte, error) {
	files := make(map[string][]byte, len(credentialFiles))
	for _, name := range credentialFiles {
		b, err := readCredentialFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		files[name] = b
	}
	return files, nil
}

func readCredentialFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fs.ErrNotExist
		}
		return nil, fmt.Errorf("cannot open: %w", bareError(err))
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat: %w", bareError(err))
	}
	if info.IsDir() {
		return nil, errors.New("is a directory, want a file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", bareError(err))
	}
	if len(b) > maxCredentialFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxCredentialFileSize)
	}
	return b, nil
}

// CredentialsSource supplies the current credentials; the client asks it before every call.
// Implementations must be safe for concurrent use and should return the same pointer while
// the credentials are unchanged, so that the client keeps its login token and connections.
type CredentialsSource interface {
	Credentials() (*Credentials, error)
}

// StaticCredentials is a CredentialsSource that always returns the same credentials.
type StaticCredentials struct {
	creds *Credentials
	err   error
}

// NewStaticCredentials validates c once and serves it (or the validation error) forever.
func NewStaticCredentials(c Credentials) *StaticCredentials {
	if err := c.Validate(); err != nil {
		return &StaticCredentials{err: fmt.Errorf("%w: %w", ErrCredentials, err)}
	}
	return &StaticCredentials{creds: &c}
}

// Credentials returns the credentials or the validation error.
func (s *StaticCredentials) Credentials() (*Credentials, error) { return s.creds, s.err }

// SettableCredentials is a CredentialsSource whose credentials are replaced from outside, for
// credentials read from a Kubernetes Secret. Set keeps the same pointer while the data is
// unchanged, so that the client keeps its login session.
type SettableCredentials struct {
	mu     sync.Mutex
	digest [sha256.Size]byte
	set    bool
	creds  *Credentials
	err    error
}

// Set replaces the credentials with those data holds, unless data is what was set last.
func (s *SettableCredentials) Set(data map[string][]byte) {
	d := digestFiles(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set && d == s.digest {
		return
	}
	s.digest, s.set = d, true
	s.creds, s.err = CredentialsFromData(data)
	if s.err != nil {
		s.err = fmt.Errorf("%w: %w", ErrCredentials, s.err)
	}
}

// Fail makes the source answer err (the Secret cannot be read) until the next Set.
func (s *SettableCredentials) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set, s.creds, s.err = false, nil, fmt.Errorf("%w: %w", ErrCredentials, err)
}

// Credentials returns the credentials last set, or why there are none.
func (s *SettableCredentials) Credentials() (*Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.set && s.err == nil {
		return nil, fmt.Errorf("%w: not read yet", ErrCredentials)
	}
	return s.creds, s.err
}

// DefaultReloadInterval is how often FileCredentials looks at its directory at most.
const DefaultReloadInterval = time.Second

// FileCredentials is a CredentialsSource reading a directory such as a mounted Secret. It
// re-reads the files at most once per interval, when asked, so that a Secret swapped by the
// kubelet (an atomic "..data" symlink change) is picked up without a restart; unchanged
// content keeps the same *Credentials.
type FileCredentials struct {
	dir      string
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex
	checked   time.Time
	digest    [sha256.Size]byte
	loadedAny bool
	creds     *Credentials
	err       error
}

// NewFileCredentials reads dir now and returns a source that follows its changes. A broken
// directory is not fatal: Check and Credentials report the problem until it is fixed.
func NewFileCredentials(dir string) *FileCredentials {
	f := &FileCredentials{dir: dir, interval: DefaultReloadInterval, now: time.Now}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reload()
	return f
}

// Dir returns the directory being followed.
func (f *FileCredentials) Dir() string { return f.dir }

// Credentials returns the current credentials, re-reading the directory when the interval has
// passed. The error wraps ErrCredentials.
func (f *FileCredentials) Credentials() (*Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A clock that went backwards also triggers a read.
	if elapsed := f.now().Sub(f.checked); elapsed >= f.interval || elapsed < 0 {
		f.reload()
	}
	return f.creds, f.err
}

// Check returns the last load error (nil when the credentials are usable), re-reading the
// directory when the interval has passed. It suits a readiness check.
func (f *FileCredentials) Check() error {
	_, err := f.Credentials()
	return err
}

// reload re-reads the directory; f.mu must be held.
func (f *FileCredentials) reload() {
	f.checked = f.now()
	files, err := readCredentialFiles(f.dir)
	if err != nil {
		f.setError(err)
		return
	}
	digest := digestFiles(files)
	if f.loadedAny && digest == f.digest {
		return
	}
	f.digest, f.loadedAny = digest, true
	creds, err := credentialsFromFiles(files)
	if err != nil {
		f.creds, f.err = nil, fmt.Errorf("%w: %w", ErrCredentials, err)
		return
	}
	f.creds, f.err = creds, nil
}

// setError records a failed read; the next read re-validates whatever it finds.
func (f *FileCredentials) setError(err error) {
	f.creds, f.loadedAny = nil, false
	f.err = fmt.Errorf("%w: %w", ErrCredentials, err)
}

// digestFiles hashes the names and contents of the files, in a fixed order.
func digestFiles(files map[string][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, name := range credentialFiles {
		b, ok := files[name]
		if !ok {
			continue
		}
		_, _ = fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		_, _ = h.Write(b)
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d
}

// bareError drops the path from a file-system error (the caller names the file itself).
func bareError(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}
