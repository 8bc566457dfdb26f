package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
)

// benchTenant is the simulated tenant of a benchmark, served over TLS by a
// front that replays blob bodies from memory once the simulator has
// rendered them. The simulator generates records at 3–7 µs each, which on
// two cores would cap the collector well below its own speed; replaying
// leaves every request going through the simulator's token check, throttle
// and request accounting (sim.Stats()), and skips only the generation.
type benchTenant struct {
	sim    *o365sim.Server
	cache  *blobCache
	srv    *http.Server
	url    string
	caPEM  []byte
	blobs  []o365sim.ContentInfo // listable at start, all content types
	sizes  []int                 // every record's size in bytes
	bytes  int64                 // sum of sizes
	huge   o365sim.ContentInfo   // the largest blob
	added  int                   // records of blobs added by live-tail phases
	addedN int                   // and how many blobs
	hugeMB float64
}

// newBenchTenant builds a tenant whose 167 hours of history hold at least
// records records (plus the huge blob) in blobs of about perBlob records.
func newBenchTenant(seed int64, records, perBlob, huge int) (*benchTenant, error) {
	// Inside the 7-day retention with an hour to spare for a long bench.
	const history = 167 * time.Hour
	n := max(1, records/perBlob)
	interval := history * time.Duration(len(o365sim.ContentTypes)) / time.Duration(n)
	for {
		sim, err := o365sim.New(o365sim.Config{
			Seed:              seed,
			History:           history,
			BlobInterval:      interval,
			RecordsPerBlob:    perBlob,
			HugeBlobRecords:   huge,
			SubscribedAtStart: o365sim.ContentTypes,
			// Consistent with O365_MAX_REQUESTS_PER_MINUTE below: the
			// input's own budget, which the API enforces too.
			RequestsPerMinute: benchRequestsPerMinute,
		})
		if err != nil {
			return nil, err
		}
		t := &benchTenant{sim: sim}
		total := 0
		for _, ct := range o365sim.ContentTypes {
			for _, b := range sim.Blobs(ct) {
				t.blobs = append(t.blobs, b)
				total += b.Records
				if b.Records > t.huge.Records {
					t.huge = b
				}
			}
		}
		if total-huge >= records || interval < 2*time.Second {
			return t, nil
		}
		interval = interval * 19 / 20
	}
}

// benchRequestsPerMinute is both the input's budget and the simulated
// tenant's limit in the benchmark.
const benchRequestsPerMinute = 60000

// Total is the number of records a fresh collector drains now: the backlog
// and the blobs live-tail phases added.
func (t *benchTenant) Total() int { return t.Records() + t.added }

// Records is the number of records listable at start.
func (t *benchTenant) Records() int {
	n := 0
	for _, b := range t.blobs {
		n += b.Records
	}
	return n
}

// start serves the tenant on a loopback TLS listener with a fresh CA.
func (t *benchTenant) start() error {
	cert, caPEM, err := selfSignedLoopbackCert()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	t.caPEM = caPEM
	t.url = "https://" + ln.Addr().String()
	t.cache = &blobCache{next: t.sim.Handler(), bodies: map[string][]byte{}}
	t.srv = &http.Server{Handler: t.cache, ReadHeaderTimeout: 10 * time.Second}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	go t.srv.Serve(tls.NewListener(ln, tlsCfg)) //nolint:errcheck // ErrServerClosed on Close
	return nil
}

func (t *benchTenant) close() {
	if t.srv != nil {
		_ = t.srv.Close()
	}
}

func (t *benchTenant) blobURL(contentID string) string {
	return t.url + "/api/v1.0/" + t.sim.TenantID() + "/activity/feed/audit/" + contentID
}

// warm fetches every listable blob once, so that the simulator renders it
// into the cache, and measures the records' sizes on the way.
func (t *benchTenant) warm(ctx context.Context, workers int) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(t.caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	token := t.sim.AccessToken()
	jobs := make(chan o365sim.ContentInfo)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				sizes, n, err := t.fetchSizes(ctx, hc, token, b)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				t.sizes = append(t.sizes, sizes...)
				t.bytes += n
				if b.ContentID == t.huge.ContentID {
					t.hugeMB = float64(n) / 1e6
				}
				mu.Unlock()
			}
		}()
	}
	for _, b := range t.blobs {
		select {
		case jobs <- b:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if len(t.sizes) != t.Records() {
		return fmt.Errorf("warming the blob cache: decoded %d records, the tenant lists %d", len(t.sizes), t.Records())
	}
	slices.Sort(t.sizes)
	return ctx.Err()
}

func (t *benchTenant) fetchSizes(ctx context.Context, hc *http.Client, token string, b o365sim.ContentInfo) ([]int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.blobURL(b.ContentID), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("warming blob %s: %w", b.ContentID, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, 0, fmt.Errorf("warming blob %s: %s: %s", b.ContentID, res.Status, body)
	}
	dec := o365api.NewRecordDecoder(res.Body)
	var (
		sizes []int
		total int64
	)
	for {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return sizes, total, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("warming blob %s: %w", b.ContentID, err)
		}
		sizes = append(sizes, len(rec.Raw))
		total += int64(len(rec.Raw))
	}
}

// sizePercentile returns the p-th percentile (0..100) of record sizes.
func (t *benchTenant) sizePercentile(p float64) int {
	if len(t.sizes) == 0 {
		return 0
	}
	i := min(len(t.sizes)-1, int(float64(len(t.sizes))*p/100))
	return t.sizes[i]
}

// shareAtLeast is the fraction of records of at least n bytes.
func (t *benchTenant) shareAtLeast(n int) float64 {
	i, _ := slices.BinarySearch(t.sizes, n)
	return float64(len(t.sizes)-i) / float64(max(1, len(t.sizes)))
}

// blobCache replays blob bodies. A request for a cached blob still runs the
// simulator's handler up to the status line (token, tenant, throttle,
// lookup, expiry; counted in Stats); only the body comes from memory.
type blobCache struct {
	next   http.Handler
	mu     sync.RWMutex
	bodies map[string][]byte // by URL path
	hits   atomic.Int64
}

// errServeCached stops the simulator's handler once it has decided to
// answer 200 with a body the cache already holds.
var errServeCached = errors.New("o365connect bench: serve the cached body")

func (c *blobCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/activity/feed/audit/") {
		c.next.ServeHTTP(w, r)
		return
	}
	c.mu.RLock()
	body, ok := c.bodies[r.URL.Path]
	c.mu.RUnlock()
	if !ok {
		tee := &teeWriter{ResponseWriter: w}
		c.next.ServeHTTP(tee, r)
		if tee.status == http.StatusOK && !tee.failed && bytes.HasSuffix(tee.buf.Bytes(), []byte("]")) {
			c.mu.Lock()
			c.bodies[r.URL.Path] = tee.buf.Bytes()
			c.mu.Unlock()
		}
		return
	}
	iw := &interceptWriter{ResponseWriter: w}
	func() {
		defer func() {
			if v := recover(); v != nil && v != errServeCached { //nolint:errorlint // our own sentinel value
				panic(v)
			}
		}()
		c.next.ServeHTTP(iw, r)
	}()
	if !iw.intercepted {
		return
	}
	c.hits.Add(1)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// teeWriter keeps a copy of the body it passes on.
type teeWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
	failed bool
}

func (t *teeWriter) WriteHeader(code int) {
	if t.status == 0 {
		t.status = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *teeWriter) Write(b []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	t.buf.Write(b)
	n, err := t.ResponseWriter.Write(b)
	if err != nil {
		t.failed = true
	}
	return n, err
}

func (t *teeWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// interceptWriter passes errors through and stops at a 200.
type interceptWriter struct {
	http.ResponseWriter
	intercepted bool
}

func (i *interceptWriter) WriteHeader(code int) {
	if code == http.StatusOK {
		i.intercepted = true
		panic(errServeCached)
	}
	i.ResponseWriter.WriteHeader(code)
}

func (i *interceptWriter) Write(b []byte) (int, error) {
	if !i.intercepted {
		i.WriteHeader(http.StatusOK)
	}
	return i.ResponseWriter.Write(b)
}

// selfSignedLoopbackCert returns a certificate for 127.0.0.1 that is its
// own CA, and that CA in PEM.
func selfSignedLoopbackCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "o365connect bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("creating the bench certificate: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPEM, nil
}
