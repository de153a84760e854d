package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/bojand/ghz/runner"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// clientTLS is how flashload reaches a server that serves TLS
// (TLS_CERT_FILE): the CAs to trust (--tls-ca; the system's when empty),
// and a client certificate for a gRPC listener that asks for one
// (--tls-cert, --tls-key; TLS_CLIENT_CA_FILE). Off: plain text.
type clientTLS struct {
	on                bool
	ca, cert, keyFile string
}

// config is the crypto/tls client configuration.
func (c clientTLS) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("--tls-ca " + c.ca + " holds no PEM certificate")
		}
	}
	if c.cert != "" {
		pair, err := tls.LoadX509KeyPair(c.cert, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// credentials are the gRPC transport credentials of the set-up connection.
func (c clientTLS) credentials() (credentials.TransportCredentials, error) {
	if !c.on {
		return insecure.NewCredentials(), nil
	}
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// ghzOptions are ghz runner's options to the same effect.
func (c clientTLS) ghzOptions() []runner.Option {
	if !c.on {
		return []runner.Option{runner.WithInsecure(true)}
	}
	opts := []runner.Option{runner.WithInsecure(false)}
	if c.ca != "" {
		opts = append(opts, runner.WithRootCertificate(c.ca))
	}
	if c.cert != "" {
		opts = append(opts, runner.WithCertificate(c.cert, c.keyFile))
	}
	return opts
}

// scheme is REST's URL scheme.
func (c clientTLS) scheme() string {
	if c.on {
		return "https://"
	}
	return "http://"
}
