package analytics

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTPError is a delivery error carrying the service's non-2xx answer.
type HTTPError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Message is the service's error message ("message" of its JSON body) or the raw body.
	Message string
	// Index is the position in the batch of the message the service rejected (a 400 names it),
	// or -1.
	Index int
}

// Error describes the answer.
func (e *HTTPError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("analytics: service answered %d", e.StatusCode)
	}
	return fmt.Sprintf("analytics: service answered %d: %s", e.StatusCode, e.Message)
}

// Temporary reports whether a retry may succeed: 408, 429 and every 5xx.
func (e *HTTPError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode >= 500
}

// retryable reports whether a failed request is worth retrying: network errors always are,
// answers of the service only when temporary; 4xx other than 408/429 never are.
func retryable(err error) bool {
	var herr *HTTPError
	if errors.As(err, &herr) {
		return herr.Temporary()
	}
	return true
}

// send delivers the in-flight batch, retrying as configured, and reports the outcome to the
// callback. A retry resends the same messages (same message ids), so the service stores them once.
// When CloseContext gives up (stopCtx), it returns at once, leaving c.inflight for it to report.
func (c *Client) send() error {
	var rejected error
	for attempt := 0; ; attempt++ {
		if err := c.dropExpired(); err != nil && rejected == nil {
			rejected = err
		}
		c.mu.Lock()
		batch := c.inflight
		c.mu.Unlock()
		if len(batch) == 0 || c.stopCtx.Err() != nil {
			return rejected
		}
		wait, err := c.post(batch)
		if c.stopCtx.Err() != nil {
			return rejected
		}
		if err == nil {
			c.setInflight(nil)
			c.success(batch)
			return rejected
		}
		// The service refuses a whole batch for one invalid message and names it: drop that one
		// and send the others again.
		var herr *HTTPError
		if errors.As(err, &herr) && herr.StatusCode == http.StatusBadRequest && len(batch) > 1 &&
			herr.Index >= 0 && herr.Index < len(batch) {
			c.cfg.Logger.Printf("dropped 1 message: %v", err)
			c.failure(batch[herr.Index:herr.Index+1], err)
			c.setInflight(append(batch[:herr.Index:herr.Index], batch[herr.Index+1:]...))
			if rejected == nil {
				rejected = err
			}
			attempt = -1
			continue
		}
		if !retryable(err) || attempt >= c.cfg.MaxRetries {
			if retryable(err) {
				plural := "s"
				if attempt == 0 {
					plural = ""
				}
				err = fmt.Errorf("analytics: giving up after %d attempt%s: %w", attempt+1, plural, err)
			}
			c.cfg.Logger.Printf("dropped %d message(s): %v", len(batch), err)
			c.setInflight(nil)
			c.failure(batch, err)
			if rejected != nil {
				return rejected
			}
			return err
		}
		if wait < 0 {
			wait = c.backoff(attempt)
		}
		c.sleep(wait)
	}
}

func (c *Client) setInflight(batch []queued) {
	c.mu.Lock()
	c.inflight = batch
	c.mu.Unlock()
}

// dropExpired drops the in-flight messages the service may have forgotten: an attempt starting
// now can land up to Timeout later, and must land within MaxMessageAge of the queueing.
func (c *Client) dropExpired() error {
	limit := c.now().Add(c.cfg.Timeout - c.cfg.MaxMessageAge)
	c.mu.Lock()
	var keep, expired []queued
	for _, q := range c.inflight {
		if q.queuedAt.After(limit) {
			keep = append(keep, q)
		} else {
			expired = append(expired, q)
		}
	}
	c.inflight = keep
	c.mu.Unlock()
	if len(expired) == 0 {
		return nil
	}
	c.cfg.Logger.Printf("dropped %d message(s): %v", len(expired), ErrTooOld)
	c.failure(expired, ErrTooOld)
	return ErrTooOld
}

// sleep waits d, or less when CloseContext gives up.
func (c *Client) sleep(d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-c.stopCtx.Done():
	}
}

// post makes one request. On failure it returns how long the service asked to wait (Retry-After)
// or -1 when it did not say.
func (c *Client) post(batch []queued) (time.Duration, error) {
	var body bytes.Buffer
	body.WriteString(`{"batch":[`)
	for i, q := range batch {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(q.json)
	}
	body.WriteString(`],"sentAt":"`)
	body.WriteString(formatTime(c.now()))
	body.WriteString(`"}`)

	ctx, cancel := context.WithTimeout(c.stopCtx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body.Bytes()))
	if err != nil {
		return -1, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.cfg.WriteKey)
	req.Header.Set("User-Agent", LibraryName+"/"+Version)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return -1, fmt.Errorf("analytics: request failed: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	message, index := errorDetails(answer)
	herr := &HTTPError{StatusCode: resp.StatusCode, Message: message, Index: index}
	if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
		return wait, herr
	}
	return -1, herr
}

// errorDetails extracts "message" and "index" from the service's JSON error body; without a
// JSON message, the message is the trimmed body and the index -1.
func errorDetails(body []byte) (string, int) {
	var parsed struct {
		Message string `json:"message"`
		Index   *int   `json:"index"`
	}
	if json.Unmarshal(body, &parsed) == nil && parsed.Message != "" {
		index := -1
		if parsed.Index != nil {
			index = *parsed.Index
		}
		return parsed.Message, index
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	return text, -1
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date. The result is
// capped at five minutes.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	var wait time.Duration
	if secs, err := strconv.ParseFloat(value, 64); err == nil {
		if secs < 0 || math.IsNaN(secs) {
			return 0, false
		}
		if secs > maxRetryAfter.Seconds() {
			return maxRetryAfter, true
		}
		wait = time.Duration(secs * float64(time.Second))
	} else if at, err := http.ParseTime(value); err == nil {
		wait = at.Sub(now)
		if wait < 0 {
			wait = 0
		}
	} else {
		return 0, false
	}
	if wait > maxRetryAfter {
		wait = maxRetryAfter
	}
	return wait, true
}

// backoff is the wait before retry number attempt+1: MinRetryDelay doubled per attempt, capped
// at MaxRetryDelay, with "equal jitter" (half fixed, half random) so clients spread out.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.MaxRetryDelay
	if attempt < 32 {
		if next := c.cfg.MinRetryDelay << uint(attempt); next > 0 && next < d {
			d = next
		}
	}
	half := d / 2
	return half + c.jit.duration(half)
}

// jitter is a locked pseudo-random source (math/rand is not seeded by default in Go 1.19).
type jitter struct {
	mu sync.Mutex
	r  *mrand.Rand
}

func newJitter() *jitter {
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	var s int64
	for _, b := range seed {
		s = s<<8 | int64(b)
	}
	return &jitter{r: mrand.New(mrand.NewSource(s ^ time.Now().UnixNano()))}
}

// duration returns a random duration in [0, max].
func (j *jitter) duration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return time.Duration(j.r.Int63n(int64(max) + 1))
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to the seeded source anyway
		for i := range b {
			b[i] = byte(mrand.Intn(256))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
