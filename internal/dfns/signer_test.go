//nolint:goconst // test fixtures repeat IDs and literals on purpose; constants would hide what is sent
package dfns

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
)

// Known-answer vector of docs/dfns-api.md §2.6.
const (
	kavPrivatePEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n-----END PRIVATE KEY-----"
	kavPublicPEM  = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----\n"
	kavChallenge  = "dGVzdC1jaGFsbGVuZ2U"
)

// clientDataTS is the clientData of the official TS key signer, for the vector test.
func clientDataTS(challenge string) []byte {
	b, _ := json.Marshal(struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}{"key.get", challenge})
	return b
}

func TestKnownAnswerVector(t *testing.T) {
	key, err := parsePrivateKey([]byte(kavPrivatePEM))
	if err != nil {
		t.Fatalf("parse vector key: %v", err)
	}
	pub, err := PublicKeyPEM(key.Public())
	if err != nil || pub != kavPublicPEM {
		t.Fatalf("public key = %q, %v; want the vector's", pub, err)
	}
	cases := []struct {
		reason         string
		clientData     []byte
		wantClientData string
		wantSignature  string
	}{{
		reason:         "Go SDK v2 form: sorted keys with crossOrigin false",
		clientData:     clientDataGo(kavChallenge),
		wantClientData: "eyJjaGFsbGVuZ2UiOiJkR1Z6ZEMxamFHRnNiR1Z1WjJVIiwiY3Jvc3NPcmlnaW4iOmZhbHNlLCJ0eXBlIjoia2V5LmdldCJ9",
		wantSignature:  "c42rWFzJc75wxVrspSDQesOR4ZTLhmRQY1rOwlwZmzbAR4OoBKHW1RzqXL2Z35AshTrMj7Mtniok1xvpIQRpBQ",
	}, {
		reason:         "TS key signer form: type then challenge",
		clientData:     clientDataTS(kavChallenge),
		wantClientData: "eyJ0eXBlIjoia2V5LmdldCIsImNoYWxsZW5nZSI6ImRHVnpkQzFqYUdGc2JHVnVaMlUifQ",
		wantSignature:  "ffrxy6PlCQ-oEGtvoxVVKwen9uTj50eragUBH6ef-7HeHXbBOGqZhdNTNveLZ2Je9g3LfxWUP5AkGqTRkImNCA",
	}}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if got := base64.RawURLEncoding.EncodeToString(tc.clientData); got != tc.wantClientData {
				t.Errorf("clientData = %s, want %s", got, tc.wantClientData)
			}
			sig, err := signMessage(key, tc.clientData)
			if err != nil {
				t.Fatal(err)
			}
			if got := base64.RawURLEncoding.EncodeToString(sig); got != tc.wantSignature {
				t.Errorf("signature = %s, want %s", got, tc.wantSignature)
			}
		})
	}
	t.Run("keySigner produces the Go row", func(t *testing.T) {
		s := &keySigner{credID: "cred", key: key}
		a, err := s.sign(&challenge{Challenge: kavChallenge, ChallengeIdentifier: "id"})
		if err != nil {
			t.Fatal(err)
		}
		if a.Kind != "Key" || a.CredentialAssertion.CredID != "cred" || a.CredentialAssertion.ClientData != cases[0].wantClientData ||
			a.CredentialAssertion.Signature != cases[0].wantSignature {
			t.Errorf("assertion = %+v, want the Go row of the vector", a)
		}
	})
}

func TestSignRoundTrip(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	cases := []struct {
		reason string
		pem    []byte
		pub    any
	}{
		{"Ed25519 in PKCS#8", pkcs8(t, edKey), edKey.Public()},
		{"ECDSA P-256 in PKCS#8", pkcs8(t, ecKey), ecKey.Public()},
		{"ECDSA P-256 in SEC 1 (openssl ecparam)", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ecKey.Public()},
		{"RSA in PKCS#8", pkcs8(t, rsaKey), rsaKey.Public()},
		{"RSA in PKCS#1 (openssl genrsa)", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), rsaKey.Public()},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			s, err := newKeySigner("cred-1", tc.pem)
			if err != nil {
				t.Fatalf("newKeySigner: %v", err)
			}
			const ch = "Y2gtYWJjZGUtZmdoaWotMDEyMzQ1Njc4OWFiY2RlZg"
			a, err := s.sign(&challenge{Challenge: ch, ChallengeIdentifier: "x"})
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			cd := a.CredentialAssertion.ClientData
			sigText := a.CredentialAssertion.Signature
			if strings.ContainsAny(cd+sigText, "+/=") {
				t.Errorf("encodings are not unpadded base64url: %q %q", cd, sigText)
			}
			data, _ := base64.RawURLEncoding.DecodeString(cd)
			if string(data) != `{"challenge":"`+ch+`","crossOrigin":false,"type":"key.get"}` {
				t.Errorf("clientData = %s", data)
			}
			sig, _ := base64.RawURLEncoding.DecodeString(sigText)
			if !verifyMessage(tc.pub, data, sig) {
				t.Error("signature does not verify with the public key")
			}
			if verifyMessage(tc.pub, append(data, ' '), sig) {
				t.Error("signature verifies over other bytes")
			}
		})
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	xder, _ := x509.MarshalPKCS8PrivateKey(x)
	secret := "c2VjcmV0LWtleS1tYXRlcmlhbA=="
	cases := []struct {
		reason string
		pem    string
		want   string
	}{
		{"not PEM at all", secret, "no PEM block"},
		{"PEM of garbage", "-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----", "not a PKCS#8, SEC 1 or PKCS#1"},
		{"encrypted PEM", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\n" + secret + "\n-----END RSA PRIVATE KEY-----", "encrypted"},
		{"X25519 cannot sign", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: xder})), "unsupported private key type"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			_, err := parsePrivateKey([]byte(tc.pem))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	cases := []struct {
		reason string
		alg    KeyAlgorithm
		check  func(any) bool
	}{
		{"ECDSA P-256 for the default", KeyECDSAP256, func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() }},
		{"Ed25519", KeyEd25519, func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
		{"RSA 2048", KeyRSA2048, func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			priv, pub, err := GenerateKey(tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(priv)
			if block == nil || block.Type != "PRIVATE KEY" {
				t.Fatalf("private key is not PKCS#8 PEM")
			}
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil || !tc.check(key) {
				t.Fatalf("private key = %T, %v", key, err)
			}
			pblock, _ := pem.Decode([]byte(pub))
			if pblock == nil || pblock.Type != "PUBLIC KEY" {
				t.Fatalf("public key is not SPKI PEM")
			}
			pk, err := x509.ParsePKIXPublicKey(pblock.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			signer, _ := parsePrivateKey(priv)
			sig, _ := signMessage(signer, []byte("hello"))
			if !verifyMessage(pk, []byte("hello"), sig) {
				t.Error("public key does not match the private key")
			}
		})
	}
	if _, _, err := GenerateKey("DSA"); err == nil {
		t.Error("GenerateKey(DSA) succeeded, want an error")
	}
}

func TestChallengeAllowList(t *testing.T) {
	cases := []struct {
		reason  string
		allowed []string
		want    bool
	}{
		{"empty list allows any credential", nil, true},
		{"listed credential", []string{"a", "cred"}, true},
		{"credential not listed", []string{"a", "b"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			ch := &challenge{Challenge: "c", ChallengeIdentifier: "i"}
			for _, id := range tc.allowed {
				ch.AllowCredentials.Key = append(ch.AllowCredentials.Key, allowedCredential{Type: "public-key", ID: id})
			}
			if got := ch.allows("cred"); got != tc.want {
				t.Errorf("allows = %t, want %t", got, tc.want)
			}
			key, _ := parsePrivateKey([]byte(kavPrivatePEM))
			_, err := (&keySigner{credID: "cred", key: key}).sign(ch)
			if (err == nil) != tc.want {
				t.Errorf("sign error = %v, want success %t", err, tc.want)
			}
		})
	}
	key, _ := parsePrivateKey([]byte(kavPrivatePEM))
	if _, err := (&keySigner{credID: "cred", key: key}).sign(&challenge{}); err == nil {
		t.Error("signing an empty challenge succeeded")
	}
}

// A secp256k1 key (which Dfns accepts, and the Go standard library cannot sign with) is
// refused by name, never as a malformed key.
func TestSecp256k1KeyRefusedByName(t *testing.T) {
	type ecPrivateKey struct {
		Version       int
		PrivateKey    []byte
		NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	}
	der, err := asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: make([]byte, 32), NamedCurveOID: asn1.ObjectIdentifier{1, 3, 132, 0, 10}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = parsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if err == nil || !strings.Contains(err.Error(), "secp256k1") || !strings.Contains(err.Error(), "P-256") {
		t.Fatalf("parsePrivateKey = %v, want a refusal naming secp256k1 and what to use", err)
	}
}
