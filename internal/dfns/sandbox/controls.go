package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// faultsJSON is Faults on the wire, durations as Go duration strings.
type faultsJSON struct {
	Latency    string      `json:"latency,omitempty"`
	ErrorRate  float64     `json:"errorRate"`
	Kinds      []FaultKind `json:"kinds,omitempty"`
	Operations []string    `json:"operations,omitempty"`
}

// serveControls serves the test controls under /sandbox/ (no auth, no faults, no latency).
func (s *Server) serveControls(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, errBadRequest("request body is too large or unreadable"))
		return
	}
	if id, found := registerPath(r); found {
		s.postRegister(w, id, body)
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /sandbox/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "GET /sandbox/faults":
		f := s.GetFaults()
		writeJSON(w, http.StatusOK, faultsJSON{Latency: f.Latency.String(), ErrorRate: f.ErrorRate, Kinds: f.Kinds, Operations: f.Operations})
	case "PUT /sandbox/faults":
		s.putFaults(w, body)
	case "POST /sandbox/inject":
		s.postInject(w, body)
	case "GET /sandbox/counters":
		writeJSON(w, http.StatusOK, s.Counters())
	case "DELETE /sandbox/counters":
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	case "POST /sandbox/users":
		s.postUser(w, body)
	case "GET /sandbox/strict":
		writeJSON(w, http.StatusOK, s.Strict().Names())
	case "PUT /sandbox/strict":
		s.putStrict(w, body)
	default:
		writeError(w, errNotFound("route not found: %s %s", r.Method, r.URL.Path))
	}
}

func (s *Server) putFaults(w http.ResponseWriter, body []byte) {
	var in faultsJSON
	if err := decodeJSON(body, &in); err != nil {
		writeError(w, err)
		return
	}
	f := Faults{ErrorRate: in.ErrorRate, Kinds: in.Kinds, Operations: in.Operations}
	if in.Latency != "" {
		d, err := time.ParseDuration(in.Latency)
		if err != nil || d < 0 {
			writeError(w, errBadRequest("latency must be a non-negative Go duration such as \"20ms\""))
			return
		}
		f.Latency = d
	}
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		writeError(w, errBadRequest("errorRate must be between 0 and 1"))
		return
	}
	for _, k := range f.Kinds {
		if !validFaultKind(k) {
			writeError(w, errBadRequest("unknown fault kind %q", k))
			return
		}
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, in)
}

func (s *Server) postInject(w http.ResponseWriter, body []byte) {
	var in struct {
		Operation string    `json:"operation"`
		Kind      FaultKind `json:"kind"`
	}
	if err := decodeJSON(body, &in); err != nil {
		writeError(w, err)
		return
	}
	if in.Operation == "" || !validFaultKind(in.Kind) {
		writeError(w, errBadRequest("operation and a valid kind are required"))
		return
	}
	s.InjectOnce(in.Operation, in.Kind)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) postUser(w http.ResponseWriter, body []byte) {
	var in struct {
		Email     string `json:"email"`
		Admin     bool   `json:"admin"`
		PublicKey string `json:"publicKey"`
	}
	if err := decodeJSON(body, &in); err != nil {
		writeError(w, err)
		return
	}
	var creds *UserCredentials
	var err error
	if in.PublicKey != "" {
		creds, err = s.CreateUserWithPublicKey(in.Email, in.Admin, []byte(in.PublicKey))
	} else {
		creds, err = s.CreateUser(in.Email, in.Admin)
	}
	if err != nil {
		writeError(w, errBadRequest("%s", err.Error()))
		return
	}
	writeCredentials(w, creds)
}

// writeCredentials answers 200 with the credentials, the private key as a PEM string.
func writeCredentials(w http.ResponseWriter, creds *UserCredentials) {
	raw, err := json.Marshal(creds)
	if err != nil {
		writeError(w, errInternal("credentials could not be encoded"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
}

// putStrict replaces the strict behaviours with a JSON list of names ("all" for every one,
// [] for none) and answers the list in effect.
func (s *Server) putStrict(w http.ResponseWriter, body []byte) {
	var names []string
	if err := json.Unmarshal(body, &names); err != nil {
		writeError(w, errBadRequest("the body must be a JSON list of behaviour names"))
		return
	}
	st, err := ParseStrictness(names)
	if err != nil {
		writeError(w, errBadRequest("%s", err.Error()))
		return
	}
	s.SetStrict(st)
	writeJSON(w, http.StatusOK, st.Names())
}

// registerPath matches POST /sandbox/users/{userId}/register.
func registerPath(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	rest, found := strings.CutPrefix(r.URL.Path, "/sandbox/users/")
	id, found2 := strings.CutSuffix(rest, "/register")
	if !found || !found2 || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// postRegister completes an invited user's registration (Server.RegisterUser). The optional
// body {"publicKey": PEM} (or "publicKeyPem") names the key; the answer is the user's
// credentials, with the private key when the sandbox generated it.
func (s *Server) postRegister(w http.ResponseWriter, userID string, body []byte) {
	var in struct {
		PublicKey    string `json:"publicKey"`
		PublicKeyPEM string `json:"publicKeyPem"`
	}
	if err := decodeOptionalJSON(body, &in); err != nil {
		writeError(w, err)
		return
	}
	key := in.PublicKey
	if key == "" {
		key = in.PublicKeyPEM
	}
	creds, err := s.RegisterUser(userID, []byte(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeCredentials(w, creds)
}
