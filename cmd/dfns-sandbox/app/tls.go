package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Names every server certificate carries, and the organisation of the generated certificates.
const (
	loopbackIPv4 = "127.0.0.1"
	localhost    = "localhost"
	certOrg      = "dfns-sandbox"
)

// certValidity is how long the generated CA and server certificate are valid; a sandbox
// lives for one test run or one demo, and a fresh CA is made at every start.
const certValidity = 30 * 24 * time.Hour

// TLSMaterial is a generated CA and a server certificate it signed.
type TLSMaterial struct {
	// CACertPEM is the CA certificate that clients trust (the bootstrap ca.crt).
	CACertPEM []byte
	// Certificate is the server's certificate chain and key.
	Certificate tls.Certificate
}

// NewTLSMaterial generates an ECDSA P-256 CA and a server certificate for 127.0.0.1, ::1,
// localhost and every extra host given (IP addresses or DNS names).
func NewTLSMaterial(hosts ...string) (*TLSMaterial, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: certOrg + " CA", Organization: []string{certOrg}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	leaf, err := newServerCert(caCert, caKey, now, hosts)
	if err != nil {
		return nil, err
	}
	leaf.Certificate = append(leaf.Certificate, caDER)
	return &TLSMaterial{
		CACertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Certificate: leaf,
	}, nil
}

func newServerCert(
	ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time, hosts []string,
) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: certOrg, Organization: []string{certOrg}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	tmpl.IPAddresses, tmpl.DNSNames = subjectAltNames(hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// subjectAltNames returns the loopback names plus the given hosts, without duplicates;
// unspecified addresses (0.0.0.0, ::) are not names a client can verify, so they are left out.
func subjectAltNames(hosts []string) ([]net.IP, []string) {
	ips := []net.IP{net.ParseIP(loopbackIPv4).To4(), net.IPv6loopback}
	dns := []string{localhost}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		ip := net.ParseIP(h)
		switch {
		case ip == nil:
			if !slices.Contains(dns, h) {
				dns = append(dns, h)
			}
		case ip.IsUnspecified():
		case !slices.ContainsFunc(ips, ip.Equal):
			ips = append(ips, ip)
		}
	}
	return ips, dns
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on supported platforms; a fixed serial still works.
		return big.NewInt(1)
	}
	return n
}
