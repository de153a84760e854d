package app

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// listenTLS wraps the listeners in TLS when TLS_CERT_FILE and TLS_KEY_FILE
// are set (a.cfg.TLS), so that the servers, and Run, are the same either
// way: gRPC with ALPN h2, and with TLS_CLIENT_CA_FILE set, a client
// certificate signed by one of its CAs required and verified in the
// handshake; REST with h2 and http/1.1, no client certificate. It returns
// what the REST gateway dials the gRPC listener with.
func (a *App) listenTLS() (gateway credentials.TransportCredentials, err error) {
	if !a.cfg.TLS() {
		return insecure.NewCredentials(), nil
	}
	cert, clientCAs, err := a.cfg.TLSFiles()
	if err != nil {
		return nil, err
	}
	grpcTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if clientCAs != nil {
		grpcTLS.ClientCAs, grpcTLS.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	httpTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if gateway, err = gatewayTLS(cert, clientCAs); err != nil {
		return nil, err
	}
	a.grpcLis = tls.NewListener(a.grpcLis, grpcTLS)
	a.httpLis = tls.NewListener(a.httpLis, httpTLS)
	a.log.Info("TLS on both listeners", "grpc_client_certificates", clientCAs != nil)
	return gateway, nil
}

// gatewayTLS is the TLS of the REST gateway's loopback dial to its own gRPC
// listener (to go once the gateway calls the server in process): it
// trusts exactly the server's own certificate, whatever names and issuer
// it has, since the dial goes to 127.0.0.1, and, when the listener wants
// client certificates, presents that same certificate, which must then
// pass as a client certificate of clientCAs: signed by one of them, with
// the clientAuth extended key usage (or none). New fails if it does not,
// rather than serve a REST API whose every call is refused.
func gatewayTLS(cert tls.Certificate, clientCAs *x509.CertPool) (credentials.TransportCredentials, error) {
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("TLS_CERT_FILE: %w", err)
	}
	if clientCAs != nil {
		chain := x509.NewCertPool()
		for _, der := range cert.Certificate[1:] {
			if c, err := x509.ParseCertificate(der); err == nil {
				chain.AddCert(c)
			}
		}
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots: clientCAs, Intermediates: chain, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}); err != nil {
			return nil, fmt.Errorf("TLS_CLIENT_CA_FILE: the REST gateway reaches the gRPC listener with TLS_CERT_FILE's certificate "+
				"as its client certificate, which must be signed by a CA of TLS_CLIENT_CA_FILE and allow clientAuth: %w", err)
		}
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// Verified below instead: the server must show our own certificate.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], leaf.Raw) {
				return errors.New("the gRPC listener presented a certificate other than TLS_CERT_FILE's")
			}
			return nil
		},
	}), nil
}
