//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFiles writes name → content into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadCredentials(t *testing.T) {
	key := newTestKey(t, KeyEd25519)
	tokenWithOrg := fakeJWT(map[string]any{"exp": 2000000000, orgClaim: map[string]any{"orgId": "or-from-token"}})
	tokenNoOrg := fakeJWT(map[string]any{"exp": 2000000000})
	const secretish = "SECRET-VALUE-0123456789"
	oneLineKey := strings.ReplaceAll(strings.TrimSpace(string(key.pem)), "\n", `\n`)
	cases := []struct {
		reason   string
		files    map[string]string
		wantErr  string // substring; "" = success
		wantMode CredentialsMode
		wantOrg  string
		wantURL  string
	}{{
		reason:   "login mode with every file, values trimmed, trailing slash dropped",
		files:    map[string]string{FileUsername: " " + testUsername + "\n", FileCredID: testCredID + "\n", FilePrivateKey: string(key.pem), FileOrgID: testOrg + "\n", FileAPIURL: "https://api.dfns.wtf/\n"},
		wantMode: ModeLogin, wantOrg: testOrg, wantURL: "https://api.dfns.wtf",
	}, {
		reason:   "token mode takes the org from the token and the default URL",
		files:    map[string]string{FileAuthToken: tokenWithOrg + "\n"},
		wantMode: ModeToken, wantOrg: "or-from-token", wantURL: DefaultAPIURL,
	}, {
		reason:   "token mode with a signing key; DFNS_ORG_ID wins over the claim",
		files:    map[string]string{FileAuthToken: tokenWithOrg, FileCredID: testCredID, FilePrivateKey: string(key.pem), FileOrgID: testOrg},
		wantMode: ModeToken, wantOrg: testOrg, wantURL: DefaultAPIURL,
	}, {
		reason:   "a key stored on one line with literal \\n is accepted",
		files:    map[string]string{FileAuthToken: tokenWithOrg, FileCredID: testCredID, FilePrivateKey: oneLineKey},
		wantMode: ModeToken, wantOrg: "or-from-token", wantURL: DefaultAPIURL,
	}, {
		reason:  "empty optional URL file counts as absent",
		files:   map[string]string{FileAuthToken: tokenWithOrg, FileAPIURL: "\n"},
		wantURL: DefaultAPIURL, wantMode: ModeToken, wantOrg: "or-from-token",
	}, {
		reason:  "nothing set",
		files:   map[string]string{FileOrgID: testOrg},
		wantErr: "neither DFNS_USERNAME (login mode) nor DFNS_AUTH_TOKEN (token mode) is set",
	}, {
		reason:  "both modes set",
		files:   map[string]string{FileUsername: "u", FileAuthToken: tokenWithOrg},
		wantErr: "DFNS_USERNAME and DFNS_AUTH_TOKEN are both set",
	}, {
		reason:  "login mode without the credential id",
		files:   map[string]string{FileUsername: "u", FilePrivateKey: string(key.pem), FileOrgID: testOrg},
		wantErr: "DFNS_CRED_ID: missing",
	}, {
		reason:  "login mode without the key",
		files:   map[string]string{FileUsername: "u", FileCredID: "c", FileOrgID: testOrg},
		wantErr: "DFNS_PRIVATE_KEY: missing",
	}, {
		reason:  "login mode without the org",
		files:   map[string]string{FileUsername: "u", FileCredID: "c", FilePrivateKey: string(key.pem)},
		wantErr: "DFNS_ORG_ID: missing",
	}, {
		reason:  "token mode with a key but no credential id",
		files:   map[string]string{FileAuthToken: tokenWithOrg, FilePrivateKey: string(key.pem)},
		wantErr: "DFNS_CRED_ID: missing while DFNS_PRIVATE_KEY is set",
	}, {
		reason:  "token mode with a credential id but no key",
		files:   map[string]string{FileAuthToken: tokenWithOrg, FileCredID: "c"},
		wantErr: "DFNS_PRIVATE_KEY: missing while DFNS_CRED_ID is set",
	}, {
		reason:  "malformed key, content not quoted",
		files:   map[string]string{FileAuthToken: tokenWithOrg, FileCredID: "c", FilePrivateKey: secretish},
		wantErr: "DFNS_PRIVATE_KEY: no PEM block found",
	}, {
		reason:  "malformed URL",
		files:   map[string]string{FileAuthToken: tokenWithOrg, FileAPIURL: "api.dfns.io"},
		wantErr: "DFNS_API_URL: not an absolute http(s) URL",
	}, {
		reason:  "token that is no JWT and no org file",
		files:   map[string]string{FileAuthToken: secretish},
		wantErr: "DFNS_ORG_ID: missing, and DFNS_AUTH_TOKEN is not a readable JWT",
	}, {
		reason:  "token without org claim and no org file",
		files:   map[string]string{FileAuthToken: tokenNoOrg},
		wantErr: "DFNS_ORG_ID: missing, and DFNS_AUTH_TOKEN carries no org claim",
	}, {
		reason:  "CA file without a certificate",
		files:   map[string]string{FileAuthToken: tokenWithOrg, FileCACert: secretish},
		wantErr: "ca.crt: no PEM certificate found",
	}}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			c, err := LoadCredentials(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, v := range []string{secretish, tokenWithOrg, string(key.pem)} {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error quotes a file's content: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadCredentials: %v", err)
			}
			if c.Mode() != tc.wantMode || c.OrgID != tc.wantOrg || c.APIURL != tc.wantURL {
				t.Errorf("got mode %s org %s url %s, want %s %s %s", c.Mode(), c.OrgID, c.APIURL, tc.wantMode, tc.wantOrg, tc.wantURL)
			}
			s := fmt.Sprintf("%v %+v %#v %s %v", c, c, c, *c, *c)
			if strings.Contains(s, tokenWithOrg) || strings.Contains(s, "PRIVATE KEY") || !strings.Contains(s, "mode "+string(tc.wantMode)) {
				t.Errorf("String leaks a secret: %s", s)
			}
		})
	}
}

func TestLoadCredentialsDirectoryErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFiles(t, dir, map[string]string{"file": "x"})
	withDirAsKey := t.TempDir()
	if err := os.Mkdir(filepath.Join(withDirAsKey, FileAuthToken), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		reason string
		dir    string
		want   string
	}{
		{"missing directory", filepath.Join(dir, "nope"), "does not exist"},
		{"a file, not a directory", file, "not a directory"},
		{"a key that is a directory", withDirAsKey, "DFNS_AUTH_TOKEN: is a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			_, err := LoadCredentials(tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if got := fmt.Sprint((*Credentials)(nil)); got != "<nil>" {
		t.Errorf("nil credentials print %q", got)
	}
}

// kubeletDir lays out dir like a mounted Secret: dir/KEY → ..data/KEY, ..data → a versioned
// directory; each call swaps ..data atomically to a new version holding files.
type kubeletDir struct {
	t       *testing.T
	dir     string
	version int
}

func (k *kubeletDir) publish(files map[string]string) {
	k.t.Helper()
	k.version++
	vdir := filepath.Join(k.dir, "..v"+string(rune('0'+k.version)))
	if err := os.Mkdir(vdir, 0o700); err != nil {
		k.t.Fatal(err)
	}
	writeFiles(k.t, vdir, files)
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(vdir), tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
	for _, name := range credentialFiles {
		link := filepath.Join(k.dir, name)
		_ = os.Remove(link)
		if _, ok := files[name]; ok {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				k.t.Fatal(err)
			}
		}
	}
}

func TestFileCredentialsReload(t *testing.T) {
	tok1 := fakeJWT(map[string]any{orgClaim: map[string]any{"orgId": "or-1"}})
	tok2 := fakeJWT(map[string]any{orgClaim: map[string]any{"orgId": "or-2"}})
	k := &kubeletDir{t: t, dir: t.TempDir()}
	k.publish(map[string]string{FileAuthToken: tok1})

	now := time.Unix(1000, 0)
	f := NewFileCredentials(k.dir)
	f.now = func() time.Time { return now }
	if f.Dir() != k.dir {
		t.Errorf("Dir = %s", f.Dir())
	}
	c1, err := f.Credentials()
	if err != nil || c1.AuthToken != tok1 {
		t.Fatalf("first load: %v", err)
	}

	steps := []struct {
		reason    string
		publish   map[string]string // nil: no change
		advance   time.Duration
		wantErr   string
		wantToken string
		wantSame  bool // same *Credentials as before the step
	}{
		{"a change is not seen before the interval", map[string]string{FileAuthToken: tok2}, 0, "", tok1, true},
		{"a change is seen after the interval", nil, 2 * time.Second, "", tok2, false},
		{"unchanged content keeps the same pointer", map[string]string{FileAuthToken: tok2}, 2 * time.Second, "", tok2, true},
		{"a broken directory is reported", map[string]string{FileAuthToken: tok2, FileCredID: "c"}, 2 * time.Second, "DFNS_PRIVATE_KEY: missing", "", false},
		{"the error stays while the content is unchanged", nil, 2 * time.Second, "DFNS_PRIVATE_KEY: missing", "", false},
		{"a fix is picked up without restart", map[string]string{FileAuthToken: tok1}, 2 * time.Second, "", tok1, false},
	}
	prev := c1
	for _, s := range steps {
		if s.publish != nil {
			k.publish(s.publish)
		}
		now = now.Add(s.advance)
		c, err := f.Credentials()
		checkErr := f.Check()
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) || !errors.Is(err, ErrCredentials) || checkErr == nil {
				t.Errorf("%s: err = %v, Check = %v; want %q wrapping ErrCredentials", s.reason, err, checkErr, s.wantErr)
			}
			continue
		}
		if err != nil || checkErr != nil {
			t.Errorf("%s: err = %v, Check = %v", s.reason, err, checkErr)
			continue
		}
		if c.AuthToken != s.wantToken || (c == prev) != s.wantSame {
			t.Errorf("%s: token %s, same pointer %t; want %s, %t", s.reason, c.AuthToken[:10], c == prev, s.wantToken[:10], s.wantSame)
		}
		prev = c
	}
}

// TestMountedSecretReadFromOneVersion: the files are read from the version ..data names, never
// through links that a swap may have left pointing at another version.
func TestMountedSecretReadFromOneVersion(t *testing.T) {
	key1, key2 := newTestKey(t, KeyEd25519), newTestKey(t, KeyEd25519)
	base := map[string]string{FileOrgID: testOrg, FileUsername: testUsername}
	k := &kubeletDir{t: t, dir: t.TempDir()}
	v1 := map[string]string{FileCredID: "c1", FilePrivateKey: string(key1.pem)}
	v2 := map[string]string{FileCredID: "c2", FilePrivateKey: string(key2.pem)}
	maps.Copy(v1, base)
	maps.Copy(v2, base)
	k.publish(v1)
	k.publish(v2)
	// The moment of a swap: DFNS_CRED_ID still links into the first version.
	link := filepath.Join(k.dir, FileCredID)
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..v1", FileCredID), link); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCredentials(k.dir)
	if err != nil {
		t.Fatalf("LoadCredentials: %v", err)
	}
	if c.CredID != "c2" || string(c.PrivateKeyPEM) != strings.TrimSpace(string(key2.pem)) {
		t.Errorf("read credential %s with the key of another version", c.CredID)
	}
}

func TestFileCredentialsMissingDirectoryRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	now := time.Unix(0, 0)
	f := NewFileCredentials(dir)
	f.now = func() time.Time { return now }
	if err := f.Check(); err == nil || !errors.Is(err, ErrCredentials) {
		t.Fatalf("Check = %v, want ErrCredentials", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{FileAuthToken: fakeJWT(map[string]any{orgClaim: map[string]any{"orgId": "or-1"}})})
	now = now.Add(time.Hour)
	if err := f.Check(); err != nil {
		t.Fatalf("after the directory appeared: %v", err)
	}
}

func TestStaticCredentials(t *testing.T) {
	s := NewStaticCredentials(Credentials{})
	if _, err := s.Credentials(); !errors.Is(err, ErrCredentials) {
		t.Errorf("invalid static credentials: err = %v, want ErrCredentials", err)
	}
	s = NewStaticCredentials(Credentials{AuthToken: "a.b.c", OrgID: testOrg})
	if c, err := s.Credentials(); err != nil || c.APIURL != DefaultAPIURL {
		t.Errorf("valid static credentials: %v, %v", c, err)
	}
}
