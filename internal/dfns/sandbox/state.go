package sandbox

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// state is everything the sandbox knows; it is what the state file holds, so that tokens
// and credentials keep working after a restart (the JWT signing key included).
type state struct {
	OrgID      string `json:"orgId"`
	SigningKey []byte `json:"signingKey"`
	IDSeed     int64  `json:"idSeed"`
	IDCounter  uint64 `json:"idCounter"`
	Seq        int64  `json:"seq"`

	Users          map[string]*userRec     `json:"users"`
	Tokens         map[string]*tokenRec    `json:"tokens"`
	Credentials    map[string]*credRec     `json:"credentials"` // by credId
	Permissions    map[string]*permRec     `json:"permissions"`
	Assignments    map[string]*assignRec   `json:"assignments"`
	Policies       map[string]*policyRec   `json:"policies"`
	Approvals      map[string]*approvalRec `json:"approvals"`
	ChangeRequests map[string]*changeRec   `json:"changeRequests"`
	Webhooks       map[string]*webhookRec  `json:"webhooks"`
	Events         map[string]*eventRec    `json:"events"`
	Used           map[string]time.Time    `json:"used"` // single-use JWT ids → expiry
}

// userRec is a user or a service account (a service account is a user in Dfns).
type userRec struct {
	ID               string    `json:"id"`
	Username         string    `json:"username"`
	Name             string    `json:"name"`
	Kind             string    `json:"kind"`
	ExternalID       string    `json:"externalId,omitempty"`
	IsActive         bool      `json:"isActive"`
	IsServiceAccount bool      `json:"isServiceAccount"`
	IsRegistered     bool      `json:"isRegistered"`
	IsSSORequired    bool      `json:"isSSORequired"`
	IsArchived       bool      `json:"isArchived,omitempty"` // deleted in strict "archive" mode
	DateCreated      time.Time `json:"dateCreated"`
	Seq              int64     `json:"seq"`
}

// tokenRec is a long-lived access token: a service account's token or a PAT.
type tokenRec struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"` // "ServiceAccount" or "Pat"
	Name        string    `json:"name"`
	UserID      string    `json:"userId"` // the SA itself, or the PAT's owner
	CredID      string    `json:"credId"`
	PublicKey   string    `json:"publicKey"` // fingerprint
	ExternalID  string    `json:"externalId,omitempty"`
	IsActive    bool      `json:"isActive"`
	IsArchived  bool      `json:"isArchived,omitempty"` // deleted in strict "archive" mode
	DateCreated time.Time `json:"dateCreated"`
	ExpiresAt   time.Time `json:"expiresAt"`
	Seq         int64     `json:"seq"`
}

// credRec is a Key credential: a user's registered key, or the key a SA/PAT was created with.
type credRec struct {
	UUID         string    `json:"uuid"`
	CredID       string    `json:"credId"`
	UserID       string    `json:"userId"`
	TokenID      string    `json:"tokenId,omitempty"`
	Name         string    `json:"name"`
	PublicKeyPEM string    `json:"publicKeyPem"`
	IsActive     bool      `json:"isActive"`
	DateCreated  time.Time `json:"dateCreated"`
}

func (s *Server) loadOrInitState() (*state, error) {
	if s.opts.StateFile != "" {
		st, err := readStateFile(s.opts.StateFile)
		if err != nil {
			return nil, err
		}
		if st != nil {
			if s.opts.OrgID != "" && s.opts.OrgID != st.OrgID {
				return nil, fmt.Errorf("state file %s belongs to org %s, not %s", s.opts.StateFile, st.OrgID, s.opts.OrgID)
			}
			return st, nil
		}
	}
	st := newState(s.opts.Seed)
	s.replaceState(st)
	st.OrgID = s.opts.OrgID
	if st.OrgID == "" {
		st.OrgID = s.newID("or")
	}
	s.seedPermissionsLocked(s.now())
	if err := s.persistLocked(); err != nil {
		return nil, err
	}
	return st, nil
}

func newState(seed int64) *state {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = int64(binary.LittleEndian.Uint64(b[:]))
	}
	return &state{
		SigningKey: key, IDSeed: seed,
		Users: map[string]*userRec{}, Tokens: map[string]*tokenRec{}, Credentials: map[string]*credRec{},
		Permissions: map[string]*permRec{}, Assignments: map[string]*assignRec{}, Policies: map[string]*policyRec{},
		Approvals: map[string]*approvalRec{}, ChangeRequests: map[string]*changeRec{},
		Webhooks: map[string]*webhookRec{}, Events: map[string]*eventRec{}, Used: map[string]time.Time{},
	}
}

func readStateFile(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	st := newState(1)
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("parse state file %s: %w", path, err)
	}
	if st.OrgID == "" || len(st.SigningKey) == 0 {
		return nil, fmt.Errorf("state file %s lacks an org ID or signing key", path)
	}
	return st, nil
}

// persistLocked writes the state file atomically (temp file in the same directory, then
// rename). It is a no-op without Options.StateFile.
func (s *Server) persistLocked() error {
	if s.opts.StateFile == "" {
		return nil
	}
	data, err := json.Marshal(s.st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(s.opts.StateFile)
	tmp, err := os.CreateTemp(dir, ".sandbox-state-*")
	if err != nil {
		return fmt.Errorf("create temp state file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write temp state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync temp state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temp state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.opts.StateFile); err != nil {
		return fmt.Errorf("rename state file: %w", err)
	}
	return nil
}

// idAlphabet is the lowercase base32-hex alphabet seen in Dfns IDs.
const idAlphabet = "0123456789abcdefghijklmnopqrstuv"

// newID returns "<prefix>-xxxxx-xxxxx-xxxxxxxxxxxxxxxx". IDs are derived from the seed and a
// persisted counter, so they are deterministic with a seed and never repeat after a restart.
func (s *Server) newID(prefix string) string {
	s.st.IDCounter++
	var in [16]byte
	binary.LittleEndian.PutUint64(in[:8], uint64(s.st.IDSeed))
	binary.LittleEndian.PutUint64(in[8:], s.st.IDCounter)
	sum := sha256.Sum256(in[:])
	out := make([]byte, 0, 26)
	for i := range 26 {
		out = append(out, idAlphabet[sum[i]%32])
	}
	r := string(out)
	return prefix + "-" + r[:5] + "-" + r[5:10] + "-" + r[10:]
}

func (s *Server) nextSeq() int64 {
	s.st.Seq++
	return s.st.Seq
}

// randomToken returns n random alphanumeric characters (for secrets).
func randomToken(n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// isoTime formats t as Dfns does: ISO-8601 UTC with milliseconds.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// page is one page of a list answer.
type page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"nextPageToken,omitempty"`
}

// paginate sorts items by seq and cuts the page selected by the limit and paginationToken
// query parameters (limit 1..500).
func paginate[T any](c *call, items []T, seq func(T) int64, def int) ([]T, string, error) {
	q, qerr := url.ParseQuery(c.r.URL.RawQuery)
	if qerr != nil {
		return nil, "", errBadRequest("query string is malformed")
	}
	limit := def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return nil, "", errBadRequest("limit must be an integer between 1 and 500")
		}
		limit = n
	}
	slices.SortFunc(items, func(a, b T) int { return cmp.Compare(seq(a), seq(b)) })
	start := 0
	if tok := q.Get("paginationToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		after, perr := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || perr != nil {
			return nil, "", errBadRequest("paginationToken is invalid")
		}
		start, _ = slices.BinarySearchFunc(items, after, func(item T, after int64) int {
			if seq(item) > after {
				return 1
			}
			return -1
		})
	}
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq(items[end-1]), 10)))
	}
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	return out, next, nil
}
