package config

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/internal/tlstest"
)

// serverCert is a server certificate and its key, as files.
func serverCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	c := tlstest.NewCA(t).Issue(t, "server", x509.ExtKeyUsageServerAuth)
	return c.CertFile, c.KeyFile
}

func TestTLS(t *testing.T) {
	cert, key := serverCert(t)

	c, err := LoadFrom(with())
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS() {
		t.Error("TLS() = true with no TLS_* set")
	}

	c, err = LoadFrom(with("TLS_CERT_FILE", cert, "TLS_KEY_FILE", key))
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	if !c.TLS() {
		t.Error("TLS() = false with a certificate and key")
	}
	got, pool, err := c.TLSFiles()
	if err != nil || len(got.Certificate) != 1 || pool != nil {
		t.Errorf("TLSFiles() = %d certificates, pool %v, %v; want 1, nil, nil", len(got.Certificate), pool, err)
	}

	c, err = LoadFrom(with("TLS_CERT_FILE", cert, "TLS_KEY_FILE", key, "TLS_CLIENT_CA_FILE", cert))
	if err != nil {
		t.Fatalf("LoadFrom with a client CA: %v", err)
	}
	if _, pool, err := c.TLSFiles(); err != nil || pool == nil {
		t.Errorf("TLSFiles() with a client CA: pool %v, %v", pool, err)
	}
}

func TestTLSInvalid(t *testing.T) {
	dir := t.TempDir()
	cert, key := serverCert(t)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		environ map[string]string
		want    string
	}{
		{"cert without key", with("TLS_CERT_FILE", cert), "TLS_CERT_FILE is set without TLS_KEY_FILE; set both or neither"},
		{"key without cert", with("TLS_KEY_FILE", key), "TLS_KEY_FILE is set without TLS_CERT_FILE; set both or neither"},
		{"client CA without TLS", with("TLS_CLIENT_CA_FILE", cert), "TLS_CLIENT_CA_FILE is set without TLS_CERT_FILE and TLS_KEY_FILE"},
		{"missing cert", with("TLS_CERT_FILE", filepath.Join(dir, "nope.pem"), "TLS_KEY_FILE", key), "TLS_CERT_FILE=" + filepath.Join(dir, "nope.pem")},
		{"key of another cert", with("TLS_CERT_FILE", cert, "TLS_KEY_FILE", garbage), "TLS_KEY_FILE=" + garbage},
		{"client CA not PEM", with("TLS_CERT_FILE", cert, "TLS_KEY_FILE", key, "TLS_CLIENT_CA_FILE", garbage), "TLS_CLIENT_CA_FILE=" + garbage + " holds no PEM certificate"},
		{"client CA missing", with("TLS_CERT_FILE", cert, "TLS_KEY_FILE", key, "TLS_CLIENT_CA_FILE", filepath.Join(dir, "nope.pem")), "TLS_CLIENT_CA_FILE: open"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFrom(tt.environ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadFrom error =\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
