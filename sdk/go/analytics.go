package analytics

import (
	"context"
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
const Version = "0.2.0"

// LibraryName is the SDK's name, sent in every message's context.library.
const LibraryName = "nself-analytics-go"

// Limits of the service's POST /analytics/batch endpoint.
const (
	// MaxBatchMessages is the most messages one request may carry.
	MaxBatchMessages = 100
	// MaxBatchBytes is the largest request body the SDK sends (the service accepts 500 KB).
	MaxBatchBytes = 500 * 1000
)

// DedupeWindow is how long the service remembers a message id to store a retried message once
// (info.x-dedupe-window-seconds of its OpenAPI). A message is never sent later than this after it
// was queued: a retry after the window would be counted twice.
const DedupeWindow = 24 * time.Hour

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
	// DefaultTimeout is the timeout of each request.
	DefaultTimeout = 10 * time.Second
	// DefaultShutdownTimeout is the deadline of Close.
	DefaultShutdownTimeout = 10 * time.Second
)

// maxRetryAfter caps how long a Retry-After header can make the client wait.
const maxRetryAfter = 5 * time.Minute

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("analytics: client is closed")

// ErrOptedOut is returned by calls made while the client is opted out (see OptOut); the message
// is dropped without a report.
var ErrOptedOut = errors.New("analytics: opted out, message dropped")

// ErrDropped is returned when BeforeSend dropped the message.
var ErrDropped = errors.New("analytics: BeforeSend dropped the message")

// ErrTooOld is reported for messages that waited or were retried longer than MaxMessageAge.
var ErrTooOld = errors.New("analytics: message older than MaxMessageAge dropped unsent")

// ErrUnsent is reported for, and wraps the errors of CloseContext and FlushContext about, messages
// still unsent at the deadline.
var ErrUnsent = errors.New("analytics: messages not sent before the deadline")

// ErrQueueFull is returned when MaxQueueSize messages are already waiting to be sent.
var ErrQueueFull = errors.New("analytics: queue is full, message dropped")

// Callback is told the fate of every queued message, and of every message refused by Enqueue
// (invalid, queue full, client closed). Its methods run on the client's background goroutine (or
// the caller's, for refused messages), so they must return quickly; a panic in them is recovered
// and logged.
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
	// MaxMessageAge is how long a message may wait or be retried before it is dropped (reported
	// with ErrTooOld); default and maximum DedupeWindow, the service's de-duplication window.
	MaxMessageAge time.Duration
	// Timeout bounds each request (also when HTTPClient has no timeout); default DefaultTimeout.
	Timeout time.Duration
	// ShutdownTimeout is the deadline of Close; default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// DefaultProperties are added to the properties of every Track, Page and Screen (a message's
	// own win); see also Client.Register.
	DefaultProperties Properties
	// BeforeSend, if set, is called with each message before it is queued: return it (changed or
	// not) to send it, or nil to drop it (Enqueue then returns ErrDropped).
	BeforeSend func(Message) Message
	// Disabled starts the client opted out: nothing is queued nor sent until OptIn.
	Disabled bool
	// HTTPClient sends the requests; default an http.Client with a Timeout timeout.
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

	mu       sync.Mutex
	buf      []queued
	inflight []queued
	closed   bool
	optedOut bool
	defaults Properties

	wake     chan struct{}
	flushReq chan chan error
	quit     chan struct{}
	done     chan struct{}
	closeErr error
	// stopCtx is cancelled when CloseContext gives up: it ends the request in flight and the
	// retry sleep at once.
	stopCtx context.Context
	stop    context.CancelFunc

	now func() time.Time
	jit *jitter
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
	if cfg.MaxMessageAge <= 0 || cfg.MaxMessageAge > DedupeWindow {
		cfg.MaxMessageAge = DedupeWindow
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "nself-analytics: ", log.LstdFlags)
	}
	stopCtx, stop := context.WithCancel(context.Background())
	c := &Client{
		cfg:      cfg,
		optedOut: cfg.Disabled,
		defaults: copyProperties(cfg.DefaultProperties, nil),
		stopCtx:  stopCtx,
		stop:     stop,
		endpoint: strings.TrimRight(cfg.Host, "/") + "/analytics/batch",
		wake:     make(chan struct{}, 1),
		flushReq: make(chan chan error),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		now:      time.Now,
		jit:      newJitter(),
	}
	go c.loop()
	return c, nil
}

// Track queues a track message. It returns an error, without queueing, when the message is
// invalid, the queue is full or the client is closed; such a message is also reported to the
// Callback and the Logger. It never blocks on the network.
func (c *Client) Track(m Track) error { return c.Enqueue(m) }

// Identify queues an identify message (see Track for the errors).
func (c *Client) Identify(m Identify) error { return c.Enqueue(m) }

// Page queues a page message (see Track for the errors).
func (c *Client) Page(m Page) error { return c.Enqueue(m) }

// Screen queues a screen message (see Track for the errors).
func (c *Client) Screen(m Screen) error { return c.Enqueue(m) }

// Group queues a group message (see Track for the errors).
func (c *Client) Group(m Group) error { return c.Enqueue(m) }

// Alias queues an alias message (see Track for the errors).
func (c *Client) Alias(m Alias) error { return c.Enqueue(m) }

// Register adds default properties to every later Track, Page and Screen (a message's own win).
func (c *Client) Register(p Properties) {
	c.mu.Lock()
	c.defaults = copyProperties(c.defaults, p)
	c.mu.Unlock()
}

// Unregister removes the default property key.
func (c *Client) Unregister(key string) {
	c.mu.Lock()
	c.defaults = copyProperties(c.defaults, nil)
	delete(c.defaults, key)
	c.mu.Unlock()
}

// OptOut stops recording: later calls return ErrOptedOut and drop their message silently.
func (c *Client) OptOut() { c.mu.Lock(); c.optedOut = true; c.mu.Unlock() }

// OptIn records again after OptOut (or Config.Disabled).
func (c *Client) OptIn() { c.mu.Lock(); c.optedOut = false; c.mu.Unlock() }

// Pending is the number of messages queued or in flight.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf) + len(c.inflight)
}

func copyProperties(a, b Properties) Properties {
	out := make(Properties, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Enqueue queues a message of any type (a value or a pointer). See Track for the errors.
func (c *Client) Enqueue(m Message) error {
	m, err := normalize(m)
	if err != nil {
		c.refuse(nil, err)
		return err
	}
	c.mu.Lock()
	closed, optedOut, defaults := c.closed, c.optedOut, c.defaults
	c.mu.Unlock()
	if closed {
		c.refuse(m, ErrClosed)
		return ErrClosed
	}
	if optedOut {
		return ErrOptedOut
	}
	if c.cfg.BeforeSend != nil {
		changed, err := c.beforeSend(m)
		if err != nil {
			c.refuse(m, err)
			return err
		}
		if changed == nil {
			return ErrDropped
		}
		if m, err = normalize(changed); err != nil {
			c.refuse(nil, err)
			return err
		}
	}
	if err := m.validate(); err != nil {
		c.refuse(m, err)
		return err
	}
	now := c.now()
	filled, wire := m.prepare(now, defaults)
	raw, err := json.Marshal(wire)
	if err != nil {
		err = fmt.Errorf("analytics: cannot encode message: %w", err)
		c.refuse(filled, err)
		return err
	}
	if len(raw)+envelopeOverhead > MaxBatchBytes {
		c.refuse(filled, ErrMessageTooLarge)
		return ErrMessageTooLarge
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.refuse(filled, ErrClosed)
		return ErrClosed
	}
	if len(c.buf)+len(c.inflight) >= c.cfg.MaxQueueSize {
		c.mu.Unlock()
		c.refuse(filled, ErrQueueFull)
		return ErrQueueFull
	}
	c.buf = append(c.buf, queued{msg: filled, json: raw, queuedAt: now})
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

// beforeSend runs the hook, turning a panic into an error.
func (c *Client) beforeSend(m Message) (out Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("analytics: BeforeSend panicked: %v", r)
		}
	}()
	return c.cfg.BeforeSend(m), nil
}

// refuse reports a message Enqueue did not queue (m may be nil).
func (c *Client) refuse(m Message, err error) {
	c.cfg.Logger.Printf("message refused: %v", err)
	if m != nil {
		c.failure([]queued{{msg: m}}, err)
	}
}

// Flush sends every message queued before the call and waits until each was accepted or
// dropped. It returns the first delivery error, if any. It waits as long as the retries take:
// FlushContext bounds the wait.
func (c *Client) Flush() error { return c.FlushContext(context.Background()) }

// FlushContext is Flush bounded by ctx: when ctx ends first it returns an error wrapping
// ErrUnsent and ctx.Err() with the number of messages still queued or in flight (they stay
// queued and keep being retried).
func (c *Client) FlushContext(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case c.flushReq <- reply:
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		return c.unsentError(ctx.Err(), c.Pending())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return c.unsentError(ctx.Err(), c.Pending())
	}
}

func (c *Client) unsentError(cause error, n int) error {
	return fmt.Errorf("%w: %d message(s) (%v)", ErrUnsent, n, cause)
}

// Close is CloseContext with a deadline of Config.ShutdownTimeout.
func (c *Client) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	return c.CloseContext(ctx)
}

// CloseContext stops accepting messages and sends everything still queued (retrying as
// configured) until ctx ends; then it abandons the request in flight and the retry wait, reports
// every unsent message to the Callback (with ErrUnsent) and returns an error wrapping ErrUnsent.
// Otherwise it returns the first delivery error of that final flush. The background goroutine has
// stopped when it returns. Calling it again returns ErrClosed.
func (c *Client) CloseContext(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	select {
	case <-c.done:
		c.stop()
		return c.closeErr
	case <-ctx.Done():
	}
	c.stop()
	<-c.done
	c.mu.Lock()
	unsent := append(c.inflight, c.buf...)
	c.inflight, c.buf = nil, nil
	c.mu.Unlock()
	if len(unsent) == 0 {
		return c.closeErr
	}
	err := c.unsentError(ctx.Err(), len(unsent))
	c.cfg.Logger.Printf("dropped %d message(s): %v", len(unsent), err)
	c.failure(unsent, err)
	return err
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
			reply <- c.sendQueued(false) // buffered: a FlushContext that gave up does not block the loop
		case <-c.quit:
			c.closeErr = c.sendQueued(false)
			return
		}
	}
}

// sendQueued sends the queued messages in batches; with onlyFull, only when FlushAt are waiting.
func (c *Client) sendQueued(onlyFull bool) error {
	var first error
	for c.stopCtx.Err() == nil {
		c.mu.Lock()
		if len(c.buf) == 0 || (onlyFull && len(c.buf) < c.cfg.FlushAt) {
			c.mu.Unlock()
			return first
		}
		n := batchLen(c.buf)
		c.inflight = make([]queued, n)
		copy(c.inflight, c.buf[:n])
		c.buf = c.buf[n:]
		if len(c.buf) == 0 {
			c.buf = nil
		}
		c.mu.Unlock()
		if err := c.send(); err != nil && first == nil {
			first = err
		}
	}
	return first
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
		func() {
			defer c.recoverCallback()
			c.cfg.Callback.Success(q.msg)
		}()
	}
}

func (c *Client) failure(batch []queued, err error) {
	if c.cfg.Callback == nil {
		return
	}
	for _, q := range batch {
		func() {
			defer c.recoverCallback()
			c.cfg.Callback.Failure(q.msg, err)
		}()
	}
}

// recoverCallback keeps a panicking Callback from ending the program or the delivery.
func (c *Client) recoverCallback() {
	if r := recover(); r != nil {
		c.cfg.Logger.Printf("Callback panicked: %v", r)
	}
}
