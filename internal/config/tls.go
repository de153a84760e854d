package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS reports whether the listeners serve TLS: TLS_CERT_FILE and
// TLS_KEY_FILE are set.
func (c Config) TLS() bool {
	return c.TLSCertFile != "" && c.TLSKeyFile != ""
}

// TLSFiles reads the certificate and key of TLS_CERT_FILE and TLS_KEY_FILE,
// and the CAs of TLS_CLIENT_CA_FILE (nil when it is unset). LoadFrom has
// read them once already, so an error here means a file changed since.
func (c Config) TLSFiles() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("TLS_CERT_FILE=%s, TLS_KEY_FILE=%s: %w", c.TLSCertFile, c.TLSKeyFile, err)
	}
	if c.TLSClientCAFile == "" {
		return cert, nil, nil
	}
	pem, err := os.ReadFile(c.TLSClientCAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("TLS_CLIENT_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, errors.New("TLS_CLIENT_CA_FILE=" + c.TLSClientCAFile + " holds no PEM certificate")
	}
	return cert, pool, nil
}
