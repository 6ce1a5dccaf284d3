package sandbox

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// parsePublicKeyPEM reads a PEM public key as Dfns accepts it: SPKI "PUBLIC KEY" or PKCS#1
// "RSA PUBLIC KEY", possibly with literal "\n" sequences. Ed25519, ECDSA P-256 and RSA
// (2048 bits or more) are supported.
func parsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	s = strings.ReplaceAll(s, `\n`, "\n")
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	var pub crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM type %q", block.Type)
	}
	if err != nil {
		return nil, errors.New("malformed public key")
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("only the P-256 curve is supported for ECDSA keys")
		}
		return k, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys must have at least 2048 bits")
		}
		return k, nil
	default:
		return nil, errors.New("unsupported key algorithm")
	}
}

// normalizePublicKeyPEM returns the SPKI PEM and the SSH-style SHA-256 fingerprint
// ("SHA256:" + unpadded standard base64 of SHA-256 over the DER SPKI) of a public key.
func normalizePublicKeyPEM(s string) (string, string, error) {
	pub, err := parsePublicKeyPEM(s)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", errors.New("unsupported key")
	}
	sum := sha256.Sum256(der)
	out := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return string(out), "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), nil
}

// verifySignature checks sig over msg: pure Ed25519, ECDSA over SHA-256 with an ASN.1/DER
// signature, or RSA PKCS#1 v1.5 over SHA-256 (what both official SDKs produce).
func verifySignature(pub crypto.PublicKey, msg, sig []byte) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			return errors.New("signature does not verify")
		}
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, sum[:], sig) {
			return errors.New("signature does not verify (ECDSA signatures must be DER-encoded)")
		}
	case *rsa.PublicKey:
		sum := sha256.Sum256(msg)
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) != nil {
			return errors.New("signature does not verify")
		}
	default:
		return errors.New("unsupported key algorithm")
	}
	return nil
}

// verifyClientData decodes the base64url clientData and signature, verifies the signature
// over the exact clientData bytes, then checks type "key.get" and the challenge. Any key
// order and the legacy origin/crossOrigin fields are accepted.
func verifyClientData(pub crypto.PublicKey, clientDataB64, sigB64, challenge string) error {
	clientData, err := decodeB64URL(clientDataB64)
	if err != nil {
		return errors.New("clientData is not base64url")
	}
	sig, err := decodeB64URL(sigB64)
	if err != nil {
		return errors.New("signature is not base64url")
	}
	if err := verifySignature(pub, clientData, sig); err != nil {
		return err
	}
	var cd struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(clientData, &cd); err != nil {
		return errors.New("clientData is not a JSON object")
	}
	if cd.Type != "key.get" {
		return errors.New(`clientData type must be "key.get"`)
	}
	if cd.Challenge != challenge {
		return errors.New("clientData challenge does not match")
	}
	return nil
}

// decodeB64URL accepts unpadded (and, leniently, padded) base64url.
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
