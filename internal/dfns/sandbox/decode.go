package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// decodeJSON decodes a required JSON object body into v; every failure is a 400 naming the
// problem (unknown fields are ignored, as Dfns' schema validation strips them).
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errBadRequest("request body is required")
	}
	return decodeOptionalJSON(body, v)
}

// decodeOptionalJSON is decodeJSON for bodies that may be absent (activate, delete, ping:
// the Go SDK sends none, the TypeScript SDK sends {}).
func decodeOptionalJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] != '{' {
		return errBadRequest("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("request body has trailing data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return errBadRequest("invalid request body: %s must be of type %s, not %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return errBadRequest("invalid request body: malformed JSON")
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "slice":
		return "array"
	case goKind == "struct", goKind == "map", goKind == "ptr":
		return "object"
	case goKind == "bool":
		return "boolean"
	default:
		return goKind
	}
}

// checkName validates a required display name ("name"): 1..100 characters.
func checkName(name *string) error {
	if name == nil {
		return errBadRequest("name is required")
	}
	return checkLen("name", *name, 1, 100)
}

func checkLen(field, v string, lo, hi int) error {
	n := utf8.RuneCountInString(v)
	if n < lo || n > hi {
		return errBadRequest("%s must be between %d and %d characters", field, lo, hi)
	}
	return nil
}

// checkEnum validates that v is one of the allowed values.
func checkEnum(field, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return errBadRequest("%s must be one of %s", field, strings.Join(allowed, ", "))
}
