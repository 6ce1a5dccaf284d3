package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseStrictness(t *testing.T) {
	all := StrictAll()
	if got := all.Names(); !slices.Equal(got, StrictnessNames()) {
		t.Fatalf("StrictAll().Names() = %v, want every behaviour %v", got, StrictnessNames())
	}
	v := reflect.ValueOf(all)
	for i := range v.NumField() {
		if !v.Field(i).Bool() {
			t.Errorf("StrictAll leaves %s off", v.Type().Field(i).Name)
		}
	}
	for _, name := range StrictnessNames() {
		s, err := ParseStrictness([]string{name})
		if err != nil {
			t.Fatalf("ParseStrictness(%q): %v", name, err)
		}
		if got := s.Names(); !slices.Equal(got, []string{name}) {
			t.Errorf("ParseStrictness(%q).Names() = %v, want only that behaviour", name, got)
		}
	}
	s, err := ParseStrictness([]string{" archive", "", "input "})
	if err != nil || !s.ArchiveKeepsListed || !s.StrictInput || s.NoApprovalID {
		t.Errorf("ParseStrictness(archive, input) = %+v, %v", s, err)
	}
	if s, err := ParseStrictness([]string{"all"}); err != nil || s != all {
		t.Errorf(`ParseStrictness("all") = %+v, %v; want StrictAll()`, s, err)
	}
	if _, err := ParseStrictness([]string{"archive", "lenient"}); err == nil || !strings.Contains(err.Error(), `"lenient"`) {
		t.Errorf("an unknown behaviour must be an error naming it, got %v", err)
	}
	if got := (Strictness{}).Names(); got == nil || len(got) != 0 {
		t.Errorf("the default Names() = %#v, want an empty list (JSON [])", got)
	}
}

// TestStrictControls flips behaviours through Options, SetStrict and /sandbox/strict, and
// shows that the state file keeps none of it (it is configuration).
func TestStrictControls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	e := newEnv(t, Options{StateFile: path, Strict: Strictness{Invitations: true}})
	if got := e.sb.Strict(); got != (Strictness{Invitations: true}) {
		t.Errorf("Strict() = %+v after Options.Strict", got)
	}
	get := func() string {
		st, out := e.request("GET", "/sandbox/strict", "", "", nil)
		if st != 200 {
			t.Fatalf("GET /sandbox/strict: %d %s", st, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := get(); got != `["invitations"]` {
		t.Errorf("GET /sandbox/strict = %s", got)
	}
	cases := []struct {
		reason, body string
		want         int
		answer       string
	}{
		{"one behaviour", `["archive"]`, 200, `["archive"]`},
		{"two, in any order", `["input","no-approval-id"]`, 200, `["no-approval-id","input"]`},
		{"all", `["all"]`, 200, mustStr(t, StrictAll().Names())},
		{"none", `[]`, 200, `[]`},
		{"unknown name", `["archive","nope"]`, 400, ""},
		{"not a list", `{"archive":true}`, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			st, out := e.request("PUT", "/sandbox/strict", "", "", []byte(tc.body))
			if st != tc.want {
				t.Fatalf("PUT /sandbox/strict %s: %d, want %d: %s", tc.body, st, tc.want, out)
			}
			if tc.want == 200 && (strings.TrimSpace(string(out)) != tc.answer || get() != tc.answer) {
				t.Errorf("PUT /sandbox/strict %s answered %s, GET %s; want %s", tc.body, out, get(), tc.answer)
			}
		})
	}
	if got := get(); got != `[]` {
		t.Errorf("a refused PUT changed the behaviours: %s", got)
	}
	e.sb.SetStrict(StrictAll())
	e.user("admin@example.com", true) // a change, so the state file is written
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"strict", "Strict", "archive\"", "hold-creates"} {
		if strings.Contains(string(data), word) {
			t.Errorf("the state file holds %q: the strict behaviours are configuration", word)
		}
	}
	restarted := newEnv(t, Options{StateFile: path})
	if got := restarted.sb.Strict(); got != (Strictness{}) {
		t.Errorf("a restart from the state file restored strict behaviours %+v", got)
	}
}

func mustStr(t testing.TB, v any) string {
	t.Helper()
	return string(mustJSON(t, v))
}
