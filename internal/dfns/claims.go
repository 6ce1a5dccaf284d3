package dfns

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// orgClaim is the JWT claim in which Dfns puts the token's org (docs/dfns-api.md §1.3).
const orgClaim = "https://custom/app_metadata"

// tokenClaims are the parts of a Dfns JWT the client reads. The signature is not checked:
// the client only needs to know when to refresh and which org it is in.
type tokenClaims struct {
	Exp         *float64 `json:"exp"`
	AppMetadata *struct {
		OrgID string `json:"orgId"`
	} `json:"https://custom/app_metadata"`
}

// orgID returns the org claim or "".
func (c *tokenClaims) orgID() string {
	if c.AppMetadata == nil {
		return ""
	}
	return c.AppMetadata.OrgID
}

// expiry returns the exp claim, or false when there is none or it is not a sane time.
func (c *tokenClaims) expiry() (time.Time, bool) {
	if c.Exp == nil || math.IsNaN(*c.Exp) || *c.Exp <= 0 || *c.Exp > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(*c.Exp)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// decodeClaims decodes a JWT's payload without verifying it. Errors never quote the token.
func decodeClaims(token string) (*tokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("JWT payload is not base64url")
	}
	var claims tokenClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("JWT payload is not a JSON object with the expected claims")
	}
	return &claims, nil
}
