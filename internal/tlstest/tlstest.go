// Package tlstest makes a certificate authority, and the certificates it
// signs, at test time, as PEM files, for tests of TLS listeners and of
// their clients.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority whose files live in a test's temporary
// folder.
type CA struct {
	// CertFile is its certificate, PEM.
	CertFile string
	// Pool holds its certificate, for a client or server to trust.
	Pool *x509.CertPool

	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Cert is a certificate and its key, as files and as a tls.Certificate.
type Cert struct {
	CertFile, KeyFile string
	TLS               tls.Certificate
}

var serial atomic.Int64

// NewCA makes a CA valid for the next hour.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca := &CA{dir: t.TempDir()}
	tmpl := template("test CA")
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	c := ca.make(t, "ca", tmpl, nil, nil)
	ca.CertFile, ca.cert = c.CertFile, c.TLS.Leaf
	ca.key = c.TLS.PrivateKey.(*ecdsa.PrivateKey)
	ca.Pool = x509.NewCertPool()
	ca.Pool.AddCert(ca.cert)
	return ca
}

// Issue makes a certificate the CA signs, for 127.0.0.1 and localhost,
// with the extended key usages given (x509.ExtKeyUsageServerAuth,
// x509.ExtKeyUsageClientAuth), written as name.pem and name-key.pem.
func (ca *CA) Issue(t testing.TB, name string, usages ...x509.ExtKeyUsage) Cert {
	t.Helper()
	tmpl := template(name)
	tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	tmpl.ExtKeyUsage, tmpl.KeyUsage = usages, x509.KeyUsageDigitalSignature
	return ca.make(t, name, tmpl, ca.cert, ca.key)
}

func template(name string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "flashsale " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
}

// make signs tmpl with parent's key (itself when parent is nil) and writes
// it and its new key as files.
func (ca *CA) make(t testing.TB, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	c := Cert{CertFile: filepath.Join(ca.dir, name+".pem"), KeyFile: filepath.Join(ca.dir, name+"-key.pem")}
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if c.TLS, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}
