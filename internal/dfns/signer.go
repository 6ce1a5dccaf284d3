package dfns

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

// pemPrivateKey is the PEM type of a PKCS#8 private key.
const pemPrivateKey = "PRIVATE KEY"

// credentialKindKey is the firstFactor kind of a Key credential.
const credentialKindKey = "Key"

// KeyAlgorithm names a key type the operator can generate for a service account or PAT.
type KeyAlgorithm string

const (
	// KeyECDSAP256 is ECDSA on NIST P-256; signatures are DER over SHA-256.
	KeyECDSAP256 KeyAlgorithm = "ECDSA-P256"
	// KeyEd25519 is Ed25519; signatures are pure EdDSA over the message.
	KeyEd25519 KeyAlgorithm = "Ed25519"
	// KeyRSA2048 is 2048-bit RSA; signatures are PKCS#1 v1.5 over SHA-256.
	KeyRSA2048 KeyAlgorithm = "RSA-2048"
)

// GenerateKey makes a new key pair: the private key as PKCS#8 PEM ("PRIVATE KEY", which both
// official SDKs load) and the public key as SPKI PEM ("PUBLIC KEY", what Dfns expects).
func GenerateKey(alg KeyAlgorithm) (privateKeyPEM []byte, publicKeyPEM string, err error) {
	var key crypto.Signer
	switch alg {
	case KeyECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case KeyRSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, "", fmt.Errorf("unknown key algorithm %q (want %s, %s or %s)", alg, KeyECDSAP256, KeyEd25519, KeyRSA2048)
	}
	if err != nil {
		return nil, "", fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("encode %s private key: %w", alg, err)
	}
	pub, err := PublicKeyPEM(key.Public())
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), pub, nil
}

// KeyAlgorithmOf names the algorithm of a private key (PEM) among those GenerateKey makes:
// ECDSA keys of any curve are KeyECDSAP256 (the one curve Dfns and the operator share), RSA
// keys of any size KeyRSA2048. Errors never quote the key.
func KeyAlgorithmOf(privateKeyPEM []byte) (KeyAlgorithm, error) {
	key, err := parsePrivateKey(normalizePEM(privateKeyPEM))
	if err != nil {
		return "", err
	}
	switch key.(type) {
	case ed25519.PrivateKey:
		return KeyEd25519, nil
	case *rsa.PrivateKey:
		return KeyRSA2048, nil
	default:
		return KeyECDSAP256, nil
	}
}

// GenerateCredID makes the credId of a new Key credential: 32 random bytes, base64url
// without padding, as the official browser key signer chooses it. It is an identifier, not a
// secret.
func GenerateCredID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate credId: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// PublicKeyPEM encodes a public key as SPKI PEM.
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// parsePrivateKey reads the first PEM block as PKCS#8, SEC 1 (EC) or PKCS#1 (RSA), like the
// official Go SDK. Errors never quote the input.
func parsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if x509.IsEncryptedPEMBlock(block) { //nolint:staticcheck // detecting, not decrypting
		return nil, errors.New("encrypted PEM keys are not supported")
	}
	key, err := parseKeyDER(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: %w", block.Type, err)
	}
	switch k := key.(type) {
	case ed25519.PrivateKey, *rsa.PrivateKey:
		return k.(crypto.Signer), nil
	case *ecdsa.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported private key type %T (want Ed25519, ECDSA or RSA)", key)
	}
}

func parseKeyDER(der []byte) (any, error) {
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	if bytes.Contains(der, oidSecp256k1) {
		// Dfns accepts any curve Node knows (docs/dfns-compatibility.md), but the Go standard
		// library has no secp256k1: say so rather than call the key malformed.
		return nil, errors.New("an ECDSA key on secp256k1, which the operator cannot sign with: " +
			"register a credential with a P-256 (prime256v1), Ed25519 or RSA key")
	}
	return nil, errors.New("not a PKCS#8, SEC 1 or PKCS#1 private key")
}

// oidSecp256k1 is the DER encoding of the secp256k1 curve's object identifier, 1.3.132.0.10.
var oidSecp256k1 = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}

// signMessage signs data as the Dfns Key credential flow wants it: Ed25519 over the raw
// bytes, ECDSA (ASN.1 DER) and RSA PKCS#1 v1.5 over SHA-256.
func signMessage(key crypto.Signer, data []byte) ([]byte, error) {
	if _, ok := key.(ed25519.PrivateKey); ok {
		return key.Sign(rand.Reader, data, crypto.Hash(0))
	}
	digest := sha256.Sum256(data)
	return key.Sign(rand.Reader, digest[:], crypto.SHA256)
}

// verifyMessage checks a signature made by signMessage; the tests use it.
func verifyMessage(pub crypto.PublicKey, data, sig []byte) bool {
	digest := sha256.Sum256(data)
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, data, sig)
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest[:], sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	default:
		return false
	}
}

// clientDataGo is the clientData of the official Go SDK: keys sorted, crossOrigin false.
func clientDataGo(challenge string) []byte { return clientDataOf("key.get", challenge) }

// clientDataOf is a Key credential's clientData of the given type ("key.get" to sign a
// challenge, "key.create" to register a credential): keys sorted, as the Dfns docs ask of a
// registration, crossOrigin false, no origin.
func clientDataOf(typ, challenge string) []byte {
	c, _ := json.Marshal(challenge) // a string always marshals
	t, _ := json.Marshal(typ)
	out := make([]byte, 0, len(c)+len(t)+40)
	out = append(out, `{"challenge":`...)
	out = append(out, c...)
	out = append(out, `,"crossOrigin":false,"type":`...)
	out = append(out, t...)
	out = append(out, '}')
	return out
}

// challenge is the answer of /auth/action/init and /auth/login/init (the parts we use).
type challenge struct {
	Challenge           string `json:"challenge"`
	ChallengeIdentifier string `json:"challengeIdentifier"`
	AllowCredentials    struct {
		Key []allowedCredential `json:"key"`
	} `json:"allowCredentials"`
}

// allowedCredential is one entry of allowCredentials.key.
type allowedCredential struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// allows reports whether credID may answer the challenge: an empty list allows any.
func (c *challenge) allows(credID string) bool {
	if len(c.AllowCredentials.Key) == 0 {
		return true
	}
	return slices.ContainsFunc(c.AllowCredentials.Key, func(k allowedCredential) bool { return k.ID == credID })
}

// credentialAssertion is the firstFactor of /auth/action and /auth/login.
type credentialAssertion struct {
	Kind                string        `json:"kind"`
	CredentialAssertion assertionData `json:"credentialAssertion"`
}

type assertionData struct {
	CredID     string `json:"credId"`
	ClientData string `json:"clientData"`
	Signature  string `json:"signature"`
}

// keySigner answers challenges with a Key credential. It never exposes the key.
type keySigner struct {
	credID string
	key    crypto.Signer
}

func newKeySigner(credID string, privateKeyPEM []byte) (*keySigner, error) {
	key, err := parsePrivateKey(privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FilePrivateKey, err)
	}
	return &keySigner{credID: credID, key: key}, nil
}

// sign answers a challenge with a Key assertion in the Go SDK form.
func (s *keySigner) sign(ch *challenge) (*credentialAssertion, error) {
	if ch.Challenge == "" || ch.ChallengeIdentifier == "" {
		return nil, errors.New("challenge or challengeIdentifier missing in the answer")
	}
	if !ch.allows(s.credID) {
		return nil, fmt.Errorf("credential %s (%s) is not among the credentials Dfns allows for this challenge", FileCredID, s.credID)
	}
	data := clientDataGo(ch.Challenge)
	sig, err := signMessage(s.key, data)
	if err != nil {
		return nil, fmt.Errorf("sign challenge: %w", err)
	}
	return &credentialAssertion{
		Kind: credentialKindKey,
		CredentialAssertion: assertionData{
			CredID:     s.credID,
			ClientData: base64.RawURLEncoding.EncodeToString(data),
			Signature:  base64.RawURLEncoding.EncodeToString(sig),
		},
	}, nil
}
