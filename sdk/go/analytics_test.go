package analytics

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// request is one request received by the test server.
type request struct {
	at     time.Time
	path   string
	header http.Header
	size   int
	body   struct {
		Batch  []map[string]interface{} `json:"batch"`
		SentAt string                   `json:"sentAt"`
	}
}

func (r request) ids() []string {
	out := make([]string, len(r.body.Batch))
	for i, m := range r.body.Batch {
		out[i], _ = m["messageId"].(string)
	}
	return out
}

// server is a real HTTP server recording requests; answer decides each response (n counts from 0).
type server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	answer   func(n int, w http.ResponseWriter, r *http.Request) bool
}

func newServer(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request) bool) *server {
	t.Helper()
	s := &server{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rec := request{at: time.Now(), path: r.URL.Path, header: r.Header.Clone(), size: len(raw)}
		if err := json.Unmarshal(raw, &rec.body); err != nil {
			t.Errorf("request body is not JSON: %v", err)
		}
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		if s.answer != nil && s.answer(n, w, r) {
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"success"}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) all() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests...)
}

func (s *server) waitFor(t *testing.T, n int, timeout time.Duration) []request {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got := s.all(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("wanted %d requests within %v, got %d", n, timeout, len(s.all()))
	return nil
}

// recorder is a Callback keeping what it is told.
type recorder struct {
	mu       sync.Mutex
	ok       []Message
	failed   []Message
	failures []error
}

func (r *recorder) Success(m Message) { r.mu.Lock(); r.ok = append(r.ok, m); r.mu.Unlock() }
func (r *recorder) Failure(m Message, err error) {
	r.mu.Lock()
	r.failed = append(r.failed, m)
	r.failures = append(r.failures, err)
	r.mu.Unlock()
}

func quietLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.WriteKey == "" {
		cfg.WriteKey = "wk_unit"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBatchesByCountWithSegmentFields(t *testing.T) {
	s := newServer(t, nil)
	c := newClient(t, Config{Host: s.URL, FlushAt: 3, FlushInterval: time.Hour})
	must(t, c.Track(Track{UserID: "u1", Event: "signup", Properties: Properties{"plan": "pro"}}))
	must(t, c.Identify(Identify{UserID: "u1", Traits: Traits{"email": "a@example.com"}}))
	time.Sleep(100 * time.Millisecond)
	if n := len(s.all()); n != 0 {
		t.Fatalf("sent before FlushAt was reached: %d requests", n)
	}
	must(t, c.Page(Page{AnonymousID: "anon-1", Name: "Pricing", Properties: Properties{"path": "/pricing"}}))
	req := s.waitFor(t, 1, 2*time.Second)[0]

	if req.path != "/analytics/batch" {
		t.Errorf("path = %q", req.path)
	}
	if got := req.header.Get("Authorization"); got != "Bearer wk_unit" {
		t.Errorf("Authorization = %q", got)
	}
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if _, err := time.Parse(time.RFC3339, req.body.SentAt); err != nil {
		t.Errorf("sentAt %q: %v", req.body.SentAt, err)
	}
	if len(req.body.Batch) != 3 {
		t.Fatalf("batch has %d messages, want 3", len(req.body.Batch))
	}
	track, identify, page := req.body.Batch[0], req.body.Batch[1], req.body.Batch[2]
	for i, m := range req.body.Batch {
		if id, _ := m["messageId"].(string); !uuid4.MatchString(id) {
			t.Errorf("message %d: messageId %q is not a UUID v4", i, id)
		}
		ts, _ := m["timestamp"].(string)
		if parsed, err := time.Parse(time.RFC3339, ts); err != nil || time.Since(parsed) > time.Minute {
			t.Errorf("message %d: timestamp %q", i, ts)
		}
		lib, _ := m["context"].(map[string]interface{})["library"].(map[string]interface{})
		if lib["name"] != LibraryName || lib["version"] != Version {
			t.Errorf("message %d: context.library = %v", i, lib)
		}
	}
	if track["type"] != "track" || track["event"] != "signup" || track["userId"] != "u1" ||
		track["properties"].(map[string]interface{})["plan"] != "pro" {
		t.Errorf("track = %v", track)
	}
	if identify["type"] != "identify" || identify["userId"] != "u1" ||
		identify["traits"].(map[string]interface{})["email"] != "a@example.com" {
		t.Errorf("identify = %v", identify)
	}
	if page["type"] != "page" || page["anonymousId"] != "anon-1" || page["name"] != "Pricing" {
		t.Errorf("page = %v", page)
	}
	if _, has := page["userId"]; has {
		t.Errorf("empty userId must be omitted: %v", page)
	}
}

func TestFlushIntervalSendsPartialBatch(t *testing.T) {
	s := newServer(t, nil)
	c := newClient(t, Config{Host: s.URL, FlushAt: 50, FlushInterval: 100 * time.Millisecond})
	start := time.Now()
	must(t, c.Track(Track{AnonymousID: "a", Event: "tick"}))
	req := s.waitFor(t, 1, 2*time.Second)[0]
	if len(req.body.Batch) != 1 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("interval flush: %d messages after %v", len(req.body.Batch), time.Since(start))
	}
}

func TestCallerSetIDsAndTimestampAreKept(t *testing.T) {
	s := newServer(t, nil)
	c := newClient(t, Config{Host: s.URL})
	at := time.Date(2025, 1, 6, 12, 30, 0, 0, time.FixedZone("X", 3600))
	must(t, c.Enqueue(&Track{MessageID: "my-id-1", UserID: "u", Event: "e", Timestamp: at,
		Context: Context{"library": "mine", "ip": "1.2.3.4"}}))
	must(t, c.Flush())
	m := s.all()[0].body.Batch[0]
	if m["messageId"] != "my-id-1" || m["timestamp"] != "2025-01-06T11:30:00.000Z" {
		t.Errorf("message = %v", m)
	}
	if ctx := m["context"].(map[string]interface{}); ctx["library"] != "mine" || ctx["ip"] != "1.2.3.4" {
		t.Errorf("context = %v", ctx)
	}
}

func TestFlushAndCloseDeliverEverything(t *testing.T) {
	s := newServer(t, nil)
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, FlushAt: 100, FlushInterval: time.Hour, Callback: rec})
	for i := 0; i < 5; i++ {
		must(t, c.Track(Track{UserID: "u", Event: "a"}))
	}
	must(t, c.Flush())
	if n := len(s.all()); n != 1 {
		t.Fatalf("Flush made %d requests, want 1", n)
	}
	must(t, c.Flush()) // nothing queued: no request
	for i := 0; i < 3; i++ {
		must(t, c.Track(Track{UserID: "u", Event: "b"}))
	}
	must(t, c.Close())
	reqs := s.all()
	if len(reqs) != 2 || len(reqs[1].body.Batch) != 3 {
		t.Fatalf("Close did not flush: %d requests", len(reqs))
	}
	if len(rec.ok) != 8 || len(rec.failed) != 0 {
		t.Errorf("callback: %d ok, %d failed", len(rec.ok), len(rec.failed))
	}
	if err := c.Track(Track{UserID: "u", Event: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Track after Close = %v", err)
	}
	if err := c.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v", err)
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

func TestRetriesServerErrorsWithSameMessageIDs(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, MinRetryDelay: 10 * time.Millisecond, Callback: rec})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	must(t, c.Track(Track{UserID: "u", Event: "b"}))
	must(t, c.Flush())
	reqs := s.all()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	first := strings.Join(reqs[0].ids(), ",")
	for i, r := range reqs {
		if got := strings.Join(r.ids(), ","); got != first {
			t.Errorf("attempt %d sent ids %s, first sent %s", i, got, first)
		}
	}
	if len(rec.ok) != 2 || rec.ok[0].(Track).MessageID != reqs[0].ids()[0] {
		t.Errorf("callback successes = %v", rec.ok)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"error","message":"queue full"}`))
			return true
		}
		return false
	})
	c := newClient(t, Config{Host: s.URL, MinRetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	must(t, c.Flush())
	reqs := s.all()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 950*time.Millisecond || gap > 3*time.Second {
		t.Errorf("retry came %v after the 503 with Retry-After: 1", gap)
	}
}

func TestRetries429AndGivesUpAfterMaxRetries(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 0 {
			w.WriteHeader(http.StatusTooManyRequests)
		} else {
			w.WriteHeader(http.StatusBadGateway)
		}
		return true
	})
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, MaxRetries: 2, MinRetryDelay: time.Millisecond, Callback: rec})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	err := c.Flush()
	var herr *HTTPError
	if !errors.As(err, &herr) || herr.StatusCode != http.StatusBadGateway {
		t.Fatalf("Flush = %v, want the 502", err)
	}
	if n := len(s.all()); n != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", n)
	}
	if len(rec.failed) != 1 || len(rec.ok) != 0 {
		t.Errorf("callback: %d ok, %d failed", len(rec.ok), len(rec.failed))
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"error","message":"batch must be a list"}`))
		return true
	})
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, MinRetryDelay: time.Millisecond, Callback: rec})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	err := c.Flush()
	var herr *HTTPError
	if !errors.As(err, &herr) || herr.StatusCode != 400 || herr.Message != "batch must be a list" || herr.Temporary() {
		t.Fatalf("Flush = %#v", err)
	}
	if n := len(s.all()); n != 1 {
		t.Errorf("a 400 was retried: %d requests", n)
	}
	if len(rec.failed) != 1 {
		t.Errorf("callback failures = %d", len(rec.failed))
	}
}

func TestDropsTheMessageA400NamesAndResendsTheRest(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 0 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":"error","message":"batch[1]: event is longer than 200 characters","index":1}`))
			return true
		}
		return false
	})
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, FlushAt: 10, Callback: rec})
	for _, event := range []string{"a", strings.Repeat("b", 300), "c"} {
		must(t, c.Track(Track{UserID: "u", Event: event}))
	}
	err := c.Flush()
	var herr *HTTPError
	if !errors.As(err, &herr) || herr.StatusCode != 400 || herr.Index != 1 {
		t.Fatalf("Flush = %v", err)
	}
	reqs := s.all()
	if len(reqs) != 2 || len(reqs[1].body.Batch) != 2 ||
		reqs[1].body.Batch[0]["event"] != "a" || reqs[1].body.Batch[1]["event"] != "c" {
		t.Fatalf("requests: %+v", reqs)
	}
	if len(rec.failed) != 1 || len(rec.failed[0].(Track).Event) != 300 || len(rec.ok) != 2 {
		t.Errorf("callback: ok %v, failed %v", rec.ok, rec.failed)
	}
}

func TestRetriesDroppedConnection(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return true
			}
			_ = conn.Close() // no answer at all
			return true
		}
		return false
	})
	c := newClient(t, Config{Host: s.URL, MinRetryDelay: 10 * time.Millisecond})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	must(t, c.Flush())
	reqs := s.all()
	if len(reqs) != 2 || reqs[0].ids()[0] != reqs[1].ids()[0] {
		t.Fatalf("requests = %d, ids %v", len(reqs), reqs)
	}
}

func TestRetriesUnreachableService(t *testing.T) {
	s := newServer(t, nil)
	url := s.URL
	s.Close() // nothing listens there any more
	rec := &recorder{}
	c := newClient(t, Config{Host: url, MaxRetries: 2, MinRetryDelay: time.Millisecond, Callback: rec})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	err := c.Flush()
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("Flush = %v", err)
	}
	if len(rec.failed) != 1 {
		t.Errorf("callback failures = %d", len(rec.failed))
	}
}

func TestSplitsBatchesByCountAndSize(t *testing.T) {
	s := newServer(t, nil)
	c := newClient(t, Config{Host: s.URL, FlushAt: 100, FlushInterval: time.Hour, MaxQueueSize: 1000})
	for i := 0; i < 250; i++ {
		must(t, c.Track(Track{UserID: "u", Event: "small"}))
	}
	must(t, c.Flush())
	big := strings.Repeat("x", 60*1000)
	for i := 0; i < 20; i++ {
		must(t, c.Track(Track{UserID: "u", Event: "big", Properties: Properties{"blob": big}}))
	}
	must(t, c.Flush())
	total := 0
	for _, r := range s.all() {
		if len(r.body.Batch) > MaxBatchMessages || r.size > MaxBatchBytes {
			t.Errorf("request with %d messages and %d bytes", len(r.body.Batch), r.size)
		}
		total += len(r.body.Batch)
	}
	if total != 270 {
		t.Errorf("%d messages delivered, want 270", total)
	}
	if n := len(s.all()); n < 3+3 {
		t.Errorf("%d requests: batches were not split", n)
	}
	err := c.Track(Track{UserID: "u", Event: "huge", Properties: Properties{"blob": strings.Repeat("y", MaxBatchBytes)}})
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("huge message: %v", err)
	}
}

func TestValidation(t *testing.T) {
	c := newClient(t, Config{Host: "http://127.0.0.1:1"})
	cases := []struct {
		msg  Message
		want error
	}{
		{Track{UserID: "u"}, ErrMissingEvent},
		{Track{Event: "e"}, ErrMissingUser},
		{Identify{AnonymousID: "a"}, ErrMissingUserID},
		{Page{}, ErrMissingUser},
		{(*Track)(nil), ErrUnknownMessage},
		{nil, ErrUnknownMessage},
	}
	for _, tc := range cases {
		if err := c.Enqueue(tc.msg); !errors.Is(err, tc.want) {
			t.Errorf("Enqueue(%#v) = %v, want %v", tc.msg, err, tc.want)
		}
	}
	if _, err := New(Config{Host: "http://x"}); err == nil {
		t.Error("New without WriteKey succeeded")
	}
	if _, err := New(Config{WriteKey: "k", Host: "localhost:3206"}); err == nil {
		t.Error("New with a host without scheme succeeded")
	}
}

func TestQueueFull(t *testing.T) {
	rec := &recorder{}
	c := newClient(t, Config{Host: "http://127.0.0.1:1", FlushAt: 100, FlushInterval: time.Hour,
		MaxQueueSize: 2, MaxRetries: -1, Callback: rec})
	must(t, c.Track(Track{UserID: "u", Event: "1"}))
	must(t, c.Track(Track{UserID: "u", Event: "2"}))
	if err := c.Track(Track{UserID: "u", Event: "3"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third Track = %v", err)
	}
	if len(rec.failed) != 1 || rec.failed[0].(Track).Event != "3" {
		t.Errorf("callback failures = %v", rec.failed)
	}
}

func TestHostPathPrefixIsKept(t *testing.T) {
	s := newServer(t, nil)
	c := newClient(t, Config{Host: s.URL + "/behind/proxy/"})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	must(t, c.Flush())
	if p := s.all()[0].path; p != "/behind/proxy/analytics/batch" {
		t.Errorf("path = %q", p)
	}
}

func TestConcurrentCallers(t *testing.T) {
	s := newServer(t, nil)
	c := newClient(t, Config{Host: s.URL, FlushAt: 7, FlushInterval: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := c.Track(Track{UserID: "u", Event: "c"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	must(t, c.Close())
	seen := map[string]bool{}
	for _, r := range s.all() {
		for _, id := range r.ids() {
			if seen[id] {
				t.Errorf("message %s sent twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 400 {
		t.Errorf("%d distinct messages delivered, want 400", len(seen))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{" 2.5 ", 2500 * time.Millisecond, true},
		{"0", 0, true},
		{"86400", maxRetryAfter, true},
		{"Wed, 01 Jan 2025 00:00:30 GMT", 30 * time.Second, true},
		{"Tue, 31 Dec 2024 00:00:00 GMT", 0, true},
		{"", 0, false},
		{"-3", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	c := &Client{cfg: Config{MinRetryDelay: 100 * time.Millisecond, MaxRetryDelay: 2 * time.Second}, jit: newJitter()}
	for attempt := 0; attempt < 40; attempt++ {
		want := 100 * time.Millisecond << uint(attempt)
		if attempt >= 5 || want > 2*time.Second {
			want = 2 * time.Second
		}
		distinct := map[time.Duration]bool{}
		for i := 0; i < 20; i++ {
			d := c.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
			distinct[d] = true
		}
		if len(distinct) < 2 {
			t.Errorf("backoff(%d) has no jitter", attempt)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
