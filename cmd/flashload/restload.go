package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Per-user answer flags, REST.
const (
	flagOK uint32 = 1 << iota
	flagRefused
	flagAmbiguous
)

// newHTTPClient is tuned for load: as many idle connections to the one
// host as there are concurrent callers, so none is reopened per call.
func newHTTPClient(concurrency int, timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     0,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			// HTTP/1.1 over TLS too, as over plain text: one call per
			// connection at a time, so runs compare.
			TLSClientConfig: tlsConfig,
		},
	}
}

// restError is grpc-gateway's error body.
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type   string `json:"@type"`
		Reason string `json:"reason"`
	} `json:"details"`
}

// classifyREST names an answer (HTTP status and ErrorInfo reason) and its
// class. Refusals are remembered by status and body (up to
// maxRememberedBodies of them): a rush is mostly the same few bodies, and
// decoding each with encoding/json took client CPU that the server, on the
// same machine, could use.
func classifyREST(code int, body []byte) (outcome, class, msg string) {
	if code/100 == 2 {
		return strconv.Itoa(code), classOK, ""
	}
	restClasses.mu.RLock()
	c, ok := restClasses.m[code][string(body)] // no copy of body for the lookup
	restClasses.mu.RUnlock()
	if ok {
		return c.outcome, c.class, c.msg
	}
	outcome, class, msg = decodeREST(code, body)
	restClasses.mu.Lock()
	if restClasses.n < maxRememberedBodies {
		if restClasses.m == nil {
			restClasses.m = map[int]map[string]restClass{}
		}
		if restClasses.m[code] == nil {
			restClasses.m[code] = map[string]restClass{}
		}
		restClasses.m[code][string(body)] = restClass{outcome, class, msg}
		restClasses.n++
	}
	restClasses.mu.Unlock()
	return outcome, class, msg
}

type restClass struct{ outcome, class, msg string }

// restClasses remembers classifyREST's answers, by status and body.
var restClasses struct {
	mu sync.RWMutex
	m  map[int]map[string]restClass
	n  int
}

const maxRememberedBodies = 4096

func decodeREST(code int, body []byte) (outcome, class, msg string) {
	outcome = strconv.Itoa(code)
	var e restError
	var reason string
	if json.Unmarshal(body, &e) == nil {
		msg = e.Message
		for _, d := range e.Details {
			if d.Reason != "" {
				reason = d.Reason
				outcome += "/" + reason
				break
			}
		}
	} else {
		msg = string(body)
	}
	switch {
	case namesAnOrder(reason):
		return outcome, classAmbiguous, msg
	case code == http.StatusTooManyRequests || (code == http.StatusServiceUnavailable && outcome != "503"):
		return outcome, classThrottled, msg
	case code/100 == 4:
		return outcome, classRejected, msg
	}
	return outcome, classAmbiguous, msg
}

// runREST drives l with a pool of goroutines sharing one tuned client and
// returns how long it took and how many calls failed in transport. Call n
// goes to bases[n mod len(bases)], so the calls spread evenly over a fleet.
func runREST(ctx context.Context, bases []string, l load) (time.Duration, int64, error) {
	var method, path string
	var body []byte
	switch l.op {
	case opOrder:
		method, path, body = http.MethodPost, "/v1/products/"+l.target.ProductID+"/orders", []byte("{}")
	case opStatus:
		method, path = http.MethodGet, "/v1/products/"+l.target.ProductID+"/sale-status"
	case opHealth:
		method, path = http.MethodGet, "/healthz"
	default:
		return 0, 0, fmt.Errorf("unknown op %q", l.op)
	}
	urls := make([]string, len(bases))
	for i, b := range bases {
		urls[i] = b + path
		// Built once here so that a bad URL fails the run, not every call.
		if _, err := http.NewRequest(method, urls[i], nil); err != nil {
			return 0, 0, fmt.Errorf("rest request: %w", err)
		}
	}
	var tlsConfig *tls.Config
	if l.tls.on {
		var err error
		if tlsConfig, err = l.tls.config(); err != nil {
			return 0, 0, err
		}
	}
	client := newHTTPClient(l.concurrency, l.timeout, tlsConfig)
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if l.duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, l.duration)
		defer c2()
	}
	var next atomic.Int64
	var transportErrs atomic.Int64
	var interval time.Duration
	if l.rate > 0 {
		interval = time.Second / time.Duration(l.rate)
	}
	bearer := make([]string, len(l.users)) // built once, not per call
	for i, u := range l.users {
		bearer[i] = "Bearer " + u.Token
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range l.concurrency {
		wg.Go(func() {
			buf := make([]byte, 0, 4096)
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if l.requests > 0 && n >= int64(l.requests) {
					return
				}
				if interval > 0 {
					due := start.Add(time.Duration(n) * interval)
					if d := time.Until(due); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					}
				}
				// A call started is finished even if the run's time is up,
				// so no answer is lost.
				req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), method, urls[n%int64(len(urls))], bytes.NewReader(body))
				if err != nil {
					panic(err) // method and urls were checked before the loop
				}
				userIdx := -1
				userID := ""
				if l.op == opOrder {
					userIdx = l.pick(n)
					l.tried[userIdx].Store(true)
					userID = l.users[userIdx].ID
					req.Header.Set("Authorization", bearer[userIdx])
					req.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				res, err := client.Do(req)
				var code int
				if err == nil {
					buf, err = readAll(res.Body, buf[:0])
					res.Body.Close()
					code = res.StatusCode
				}
				lat := time.Since(t0)
				if int(n) < l.warmup {
					lat = 0 // recorded, but not in the latency figures
				}
				var outcome, class, msg string
				if err != nil {
					transportErrs.Add(1)
					outcome, class, msg = "transport", classAmbiguous, transportReason(err)
				} else {
					outcome, class, msg = classifyREST(code, buf)
				}
				l.rec.record(outcome, class, userID, msg, max(lat, 0))
				if userIdx >= 0 {
					switch class {
					case classOK:
						l.flags[userIdx].Or(flagOK)
						var r struct {
							Order struct {
								ID     string `json:"id"`
								UserID string `json:"userId"`
							} `json:"order"`
						}
						if json.Unmarshal(buf, &r) == nil && r.Order.ID != "" {
							l.rec.ack(r.Order.ID, r.Order.UserID)
						}
					case classRejected, classThrottled:
						l.flags[userIdx].Or(flagRefused)
					default:
						l.flags[userIdx].Or(flagAmbiguous)
					}
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), transportErrs.Load(), nil
}

func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout: " + err.Error()
	}
	return err.Error()
}
