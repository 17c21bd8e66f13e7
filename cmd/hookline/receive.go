package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hookline/hookline/signing"
)

type receiveConfig struct {
	addr      string
	secret    string
	status    int
	tolerance time.Duration
}

func receiveFlags(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error {
	c := &receiveConfig{}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "address the demo receiver listens on")
	fs.StringVar(&c.secret, "secret", "", "webhook secret: when set, deliveries whose signatures do not verify are answered 401")
	fs.IntVar(&c.status, "status", 200, "status code to answer verified deliveries with")
	fs.DurationVar(&c.tolerance, "tolerance", 5*time.Minute, "accepted age of webhook-timestamp")
	return func(ctx context.Context, stdout, stderr io.Writer) error { return receive(ctx, c, stdout) }
}

// receive runs a receiver that verifies and prints each delivery: the
// reference for customers and the other end of the README walkthrough.
func receive(ctx context.Context, c *receiveConfig, stdout io.Writer) error {
	if c.status < 100 || c.status > 599 {
		return fmt.Errorf("--status %d is not an HTTP status", c.status)
	}
	var mu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 10<<20)
		var body []byte
		var err error
		verdict := "unsigned"
		if c.secret != "" {
			body, err = signing.VerifyRequest(c.secret, r, c.tolerance)
			verdict = "signature ok"
		} else {
			body, err = io.ReadAll(r.Body)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fmt.Fprintf(stdout, "REJECTED %s %s: %v\n", r.Header.Get("webhook-id"), r.Header.Get("X-Hookline-Event"), err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(stdout, "%s %s attempt=%s (%s)\n%s\n", r.Header.Get("webhook-id"), r.Header.Get("X-Hookline-Event"),
			r.Header.Get("X-Hookline-Attempt"), verdict, body)
		w.WriteHeader(c.status)
	})
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(stdout, "receiver ready: http://%s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
