package app

import (
	"crypto/tls"
)

// listenTLS wraps the listeners in TLS when TLS_CERT_FILE and TLS_KEY_FILE
// are set (a.cfg.TLS), so that the servers, and Run, are the same either
// way: gRPC with ALPN h2, and with TLS_CLIENT_CA_FILE set, a client
// certificate signed by one of its CAs required and verified in the
// handshake; REST with h2 and http/1.1, no client certificate. The REST
// gateway calls the services in process, so it needs no certificate.
func (a *App) listenTLS() error {
	if !a.cfg.TLS() {
		return nil
	}
	cert, clientCAs, err := a.cfg.TLSFiles()
	if err != nil {
		return err
	}
	grpcTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if clientCAs != nil {
		grpcTLS.ClientCAs, grpcTLS.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	httpTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	a.grpcLis = tls.NewListener(a.grpcLis, grpcTLS)
	a.httpLis = tls.NewListener(a.httpLis, httpTLS)
	a.log.Info("TLS on both listeners", "grpc_client_certificates", clientCAs != nil)
	return nil
}
