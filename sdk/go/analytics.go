package analytics

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Version is the version of this SDK, sent in every message's context.library.
const Version = "0.1.0"

// LibraryName is the SDK's name, sent in every message's context.library.
const LibraryName = "nself-analytics-go"

// Limits of the service's POST /analytics/batch endpoint.
const (
	// MaxBatchMessages is the most messages one request may carry.
	MaxBatchMessages = 100
	// MaxBatchBytes is the largest request body the SDK sends (the service accepts 500 KB).
	MaxBatchBytes = 500 * 1000
)

// Defaults used for the zero values of Config fields.
const (
	// DefaultHost is the service on this machine, on its default port.
	DefaultHost = "http://localhost:3206"
	// DefaultFlushAt is how many queued messages trigger a send.
	DefaultFlushAt = 20
	// DefaultFlushInterval is how often queued messages are sent anyway.
	DefaultFlushInterval = 5 * time.Second
	// DefaultMaxRetries is how many times a failed request is retried.
	DefaultMaxRetries = 8
	// DefaultMaxQueueSize is how many messages may wait in memory.
	DefaultMaxQueueSize = 10000
	// DefaultMinRetryDelay is the backoff before the first retry.
	DefaultMinRetryDelay = 100 * time.Millisecond
	// DefaultMaxRetryDelay caps the backoff between retries.
	DefaultMaxRetryDelay = 10 * time.Second
	// DefaultTimeout is the timeout of the default HTTPClient's requests.
	DefaultTimeout = 10 * time.Second
)

// maxRetryAfter caps how long a Retry-After header can make the client wait.
const maxRetryAfter = 5 * time.Minute

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("analytics: client is closed")

// ErrQueueFull is returned when MaxQueueSize messages are already waiting to be sent.
var ErrQueueFull = errors.New("analytics: queue is full, message dropped")

// Callback is told the fate of every queued message. Its methods run on the client's background
// goroutine, so they must return quickly.
type Callback interface {
	// Success is called once the service has accepted the message.
	Success(Message)
	// Failure is called when the message is dropped: rejected by the service, retries exhausted
	// or queue full.
	Failure(Message, error)
}

// Config configures a Client. Only WriteKey is required.
type Config struct {
	// WriteKey is one of the service's ingest keys (ANALYTICS_WRITE_KEYS); required.
	WriteKey string
	// Host is the service's base URL, without /analytics; default DefaultHost. A path prefix
	// (for a service behind a reverse proxy) is kept.
	Host string
	// FlushAt is how many queued messages trigger a send; default DefaultFlushAt. Requests carry
	// at most MaxBatchMessages messages.
	FlushAt int
	// FlushInterval is how often queued messages are sent even if fewer than FlushAt;
	// default DefaultFlushInterval.
	FlushInterval time.Duration
	// MaxRetries is how many times a failed request is retried; 0 means DefaultMaxRetries and a
	// negative value disables retries.
	MaxRetries int
	// MinRetryDelay is the backoff before the first retry, doubled for each next one (with
	// jitter); default DefaultMinRetryDelay.
	MinRetryDelay time.Duration
	// MaxRetryDelay caps the backoff between retries; default DefaultMaxRetryDelay. A Retry-After
	// sent by the service is honoured even when longer (up to five minutes).
	MaxRetryDelay time.Duration
	// MaxQueueSize is how many messages may wait in memory; beyond it calls return ErrQueueFull.
	// Default DefaultMaxQueueSize.
	MaxQueueSize int
	// HTTPClient sends the requests; default an http.Client with a DefaultTimeout timeout.
	HTTPClient *http.Client
	// Callback, if set, is told about every delivered and every dropped message.
	Callback Callback
	// Logger receives delivery errors; default a logger on os.Stderr.
	Logger *log.Logger
}

// Client sends messages to the service in the background. It is safe for concurrent use.
// Create it with New and Close it before the program exits, or queued messages are lost.
type Client struct {
	cfg      Config
	endpoint string

	mu     sync.Mutex
	buf    []queued
	closed bool

	wake     chan struct{}
	flushReq chan chan error
	quit     chan struct{}
	done     chan struct{}
	closeErr error

	now   func() time.Time
	sleep func(time.Duration)
	jit   *jitter
}

// New validates cfg, applies its defaults and starts the background goroutine.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.WriteKey) == "" {
		return nil, errors.New("analytics: Config.WriteKey is required")
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	host, err := url.Parse(cfg.Host)
	if err != nil || (host.Scheme != "http" && host.Scheme != "https") || host.Host == "" {
		return nil, fmt.Errorf("analytics: Config.Host %q is not an http(s) URL", cfg.Host)
	}
	if cfg.FlushAt <= 0 {
		cfg.FlushAt = DefaultFlushAt
	}
	if cfg.FlushAt > MaxBatchMessages {
		cfg.FlushAt = MaxBatchMessages
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	} else if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.MinRetryDelay <= 0 {
		cfg.MinRetryDelay = DefaultMinRetryDelay
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = DefaultMaxRetryDelay
	}
	if cfg.MaxRetryDelay < cfg.MinRetryDelay {
		cfg.MaxRetryDelay = cfg.MinRetryDelay
	}
	if cfg.MaxQueueSize <= 0 {
		cfg.MaxQueueSize = DefaultMaxQueueSize
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "nself-analytics: ", log.LstdFlags)
	}
	c := &Client{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.Host, "/") + "/analytics/batch",
		wake:     make(chan struct{}, 1),
		flushReq: make(chan chan error),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		now:      time.Now,
		sleep:    time.Sleep,
		jit:      newJitter(),
	}
	go c.loop()
	return c, nil
}

// Track queues a track message. It returns an error, without queueing, when the message is
// invalid, the queue is full or the client is closed.
func (c *Client) Track(m Track) error { return c.Enqueue(m) }

// Identify queues an identify message (see Track for the errors).
func (c *Client) Identify(m Identify) error { return c.Enqueue(m) }

// Page queues a page message (see Track for the errors).
func (c *Client) Page(m Page) error { return c.Enqueue(m) }

// Enqueue queues a Track, Identify or Page message (a value or a pointer). It never blocks on
// the network: the message is sent by the background goroutine.
func (c *Client) Enqueue(m Message) error {
	if m == nil {
		return ErrUnknownMessage
	}
	switch v := m.(type) {
	case Track, Identify, Page:
	case *Track:
		if v == nil {
			return ErrUnknownMessage
		}
		m = *v
	case *Identify:
		if v == nil {
			return ErrUnknownMessage
		}
		m = *v
	case *Page:
		if v == nil {
			return ErrUnknownMessage
		}
		m = *v
	default:
		return ErrUnknownMessage
	}
	if err := m.validate(); err != nil {
		return err
	}
	filled, wire := m.prepare(c.now())
	raw, err := json.Marshal(wire)
	if err != nil {
		return fmt.Errorf("analytics: cannot encode message: %w", err)
	}
	if len(raw)+envelopeOverhead > MaxBatchBytes {
		return ErrMessageTooLarge
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if len(c.buf) >= c.cfg.MaxQueueSize {
		c.mu.Unlock()
		c.failure([]queued{{msg: filled}}, ErrQueueFull)
		return ErrQueueFull
	}
	c.buf = append(c.buf, queued{msg: filled, json: raw})
	full := len(c.buf) >= c.cfg.FlushAt
	c.mu.Unlock()
	if full {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Flush sends every message queued before the call and waits until each was accepted or
// dropped. It returns the first delivery error, if any.
func (c *Client) Flush() error {
	reply := make(chan error, 1)
	select {
	case c.flushReq <- reply:
		return <-reply
	case <-c.done:
		return ErrClosed
	}
}

// Close stops accepting messages, sends everything still queued (retrying as configured), stops
// the background goroutine and returns the first delivery error of that final flush. Calling it
// again returns ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	<-c.done
	return c.closeErr
}

// loop is the background goroutine: it owns the sending, one request at a time.
func (c *Client) loop() {
	defer close(c.done)
	ticker := time.NewTicker(c.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.wake:
			c.sendQueued(true)
		case <-ticker.C:
			c.sendQueued(false)
		case reply := <-c.flushReq:
			reply <- c.sendQueued(false)
		case <-c.quit:
			c.closeErr = c.sendQueued(false)
			return
		}
	}
}

// sendQueued sends the queued messages in batches; with onlyFull, only when FlushAt are waiting.
func (c *Client) sendQueued(onlyFull bool) error {
	var first error
	for {
		c.mu.Lock()
		if len(c.buf) == 0 || (onlyFull && len(c.buf) < c.cfg.FlushAt) {
			c.mu.Unlock()
			return first
		}
		n := batchLen(c.buf)
		batch := make([]queued, n)
		copy(batch, c.buf[:n])
		c.buf = c.buf[n:]
		if len(c.buf) == 0 {
			c.buf = nil
		}
		c.mu.Unlock()
		if err := c.send(batch); err != nil && first == nil {
			first = err
		}
	}
}

// envelopeOverhead bounds the bytes of a batch body besides its messages.
const envelopeOverhead = 96

// batchLen is how many of the first messages fit in one request.
func batchLen(buf []queued) int {
	size := envelopeOverhead
	for i, q := range buf {
		size += len(q.json) + 1
		if i == MaxBatchMessages || (i > 0 && size > MaxBatchBytes) {
			return i
		}
	}
	return len(buf)
}

func (c *Client) success(batch []queued) {
	if c.cfg.Callback == nil {
		return
	}
	for _, q := range batch {
		c.cfg.Callback.Success(q.msg)
	}
}

func (c *Client) failure(batch []queued, err error) {
	if c.cfg.Callback == nil {
		return
	}
	for _, q := range batch {
		c.cfg.Callback.Failure(q.msg, err)
	}
}
