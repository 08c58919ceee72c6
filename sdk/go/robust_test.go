package analytics

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

func answer(status int, header map[string]string) func(int, http.ResponseWriter, *http.Request) bool {
	return func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		return true
	}
}

func TestCloseContextWithLongRetryAfterReturnsInTime(t *testing.T) {
	s := newServer(t, answer(http.StatusServiceUnavailable, map[string]string{"Retry-After": "300"}))
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, FlushAt: 100, Callback: rec})
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	must(t, c.Track(Track{UserID: "u", Event: "b"}))
	go func() { _ = c.Flush() }() // the first attempt, then the 300 s wait
	s.waitFor(t, 1, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	started := time.Now()
	err := c.CloseContext(ctx)
	took := time.Since(started)
	if took < 450*time.Millisecond || took > 5*time.Second { // the deadline, not the 300 s wait
		t.Errorf("CloseContext took %v", took)
	}
	if !errors.Is(err, ErrUnsent) {
		t.Fatalf("CloseContext = %v, want ErrUnsent", err)
	}
	rec.mu.Lock()
	failed := len(rec.failed)
	rec.mu.Unlock()
	if failed != 2 || !errors.Is(rec.failures[0], ErrUnsent) {
		t.Errorf("callback failures = %v", rec.failures)
	}
	if c.Pending() != 0 {
		t.Errorf("Pending = %d after CloseContext", c.Pending())
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(s.all()); n != 1 {
		t.Errorf("%d requests: retried after CloseContext gave up", n)
	}
}

func TestFlushContextAgainstAHangingServer(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 0 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	})
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	c := newClient(t, Config{Host: s.URL, Timeout: 400 * time.Millisecond, MinRetryDelay: 10 * time.Millisecond})
	must(t, c.Track(Track{UserID: "u", Event: "slow"}))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	started := time.Now()
	err := c.FlushContext(ctx)
	if !errors.Is(err, ErrUnsent) || time.Since(started) > 5*time.Second {
		t.Fatalf("FlushContext = %v after %v", err, time.Since(started))
	}
	if c.Pending() != 1 {
		t.Errorf("Pending = %d, want 1 (still queued)", c.Pending())
	}
	// the request times out after 400 ms and the retry is answered
	must(t, c.Flush())
	reqs := s.all()
	if len(reqs) != 2 || reqs[0].ids()[0] != reqs[1].ids()[0] {
		t.Errorf("requests = %d", len(reqs))
	}
	once.Do(func() { close(release) })
}

func TestMessagesAreNeverKeptPastMaxMessageAge(t *testing.T) {
	if DedupeWindow != 24*time.Hour {
		t.Errorf("DedupeWindow = %v", DedupeWindow)
	}
	s := newServer(t, answer(http.StatusInternalServerError, nil))
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, MaxMessageAge: 300 * time.Millisecond, Timeout: 100 * time.Millisecond,
		MinRetryDelay: 50 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond, MaxRetries: 1000, Callback: rec})
	must(t, c.Track(Track{UserID: "u", Event: "old"}))
	if err := c.Flush(); !errors.Is(err, ErrTooOld) {
		t.Fatalf("Flush = %v, want ErrTooOld", err)
	}
	reqs := s.all()
	if gap := reqs[len(reqs)-1].at.Sub(reqs[0].at); gap > 600*time.Millisecond || len(reqs) > 20 { // none later than 200 ms after queueing, plus slack
		t.Errorf("an attempt %v after the first", gap)
	}
	if len(rec.failed) != 1 || !errors.Is(rec.failures[0], ErrTooOld) {
		t.Errorf("failures = %v", rec.failures)
	}
	if newClient(t, Config{Host: s.URL, MaxMessageAge: 48 * time.Hour}).cfg.MaxMessageAge != DedupeWindow {
		t.Error("MaxMessageAge is not capped at DedupeWindow")
	}
}

func TestScreenGroupAliasUseSegmentFieldNames(t *testing.T) {
	s := newServer(t, nil)
	c := newClient(t, Config{Host: s.URL})
	must(t, c.Screen(Screen{UserID: "u", Name: "Settings", Properties: Properties{"tab": "billing"}}))
	must(t, c.Group(Group{UserID: "u", GroupID: "acme", Traits: Traits{"plan": "team"}}))
	must(t, c.Alias(Alias{UserID: "u", PreviousID: "anon-1"}))
	must(t, c.Flush())
	b := s.all()[0].body.Batch
	if b[0]["type"] != "screen" || b[0]["name"] != "Settings" || b[0]["properties"].(map[string]interface{})["tab"] != "billing" {
		t.Errorf("screen = %v", b[0])
	}
	if b[1]["type"] != "group" || b[1]["groupId"] != "acme" || b[1]["traits"].(map[string]interface{})["plan"] != "team" {
		t.Errorf("group = %v", b[1])
	}
	if b[2]["type"] != "alias" || b[2]["userId"] != "u" || b[2]["previousId"] != "anon-1" {
		t.Errorf("alias = %v", b[2])
	}
	for _, m := range []Message{Group{UserID: "u"}, Alias{UserID: "u"}, Screen{}, (*Alias)(nil)} {
		if err := c.Enqueue(m); err == nil {
			t.Errorf("Enqueue(%#v) accepted", m)
		}
	}
}

func TestDefaultPropertiesBeforeSendAndOptOut(t *testing.T) {
	s := newServer(t, nil)
	rec := &recorder{}
	c := newClient(t, Config{Host: s.URL, DefaultProperties: Properties{"env": "prod"}, Callback: rec,
		BeforeSend: func(m Message) Message {
			if tr, ok := m.(Track); ok && tr.Event == "secret" {
				return nil
			}
			return m
		}})
	c.Register(Properties{"plan": "free"})
	must(t, c.Track(Track{UserID: "u", Event: "a", Properties: Properties{"plan": "pro"}}))
	if err := c.Track(Track{UserID: "u", Event: "secret"}); !errors.Is(err, ErrDropped) {
		t.Errorf("BeforeSend drop = %v", err)
	}
	c.Unregister("env")
	must(t, c.Page(Page{UserID: "u"}))
	c.OptOut()
	if err := c.Track(Track{UserID: "u", Event: "no"}); !errors.Is(err, ErrOptedOut) {
		t.Errorf("opted out Track = %v", err)
	}
	c.OptIn()
	must(t, c.Flush())
	b := s.all()[0].body.Batch
	if len(b) != 2 {
		t.Fatalf("%d messages sent", len(b))
	}
	if p := b[0]["properties"].(map[string]interface{}); p["env"] != "prod" || p["plan"] != "pro" {
		t.Errorf("track properties = %v", p)
	}
	if p := b[1]["properties"].(map[string]interface{}); p["env"] != nil || p["plan"] != "free" {
		t.Errorf("page properties = %v", p)
	}
	if len(rec.failed) != 0 {
		t.Errorf("reported: %v", rec.failures)
	}
	disabled := newClient(t, Config{Host: s.URL, Disabled: true})
	if err := disabled.Track(Track{UserID: "u", Event: "x"}); !errors.Is(err, ErrOptedOut) {
		t.Errorf("Disabled Track = %v", err)
	}
}

type panicky struct{ calls int }

func (p *panicky) Success(Message)        { p.calls++; panic("success boom") }
func (p *panicky) Failure(Message, error) { p.calls++; panic("failure boom") }

func TestPanickingHooksNeverReachTheCaller(t *testing.T) {
	s := newServer(t, answer(http.StatusUnauthorized, nil))
	cb := &panicky{}
	c := newClient(t, Config{Host: s.URL, Callback: cb,
		BeforeSend: func(m Message) Message {
			if tr, ok := m.(Track); ok && tr.Event == "bad" {
				panic("hook bug")
			}
			return m
		}})
	if err := c.Track(Track{UserID: "u", Event: "bad"}); err == nil {
		t.Error("a panicking BeforeSend was not reported")
	}
	must(t, c.Track(Track{UserID: "u", Event: "a"}))
	must(t, c.Track(Track{UserID: "u", Event: "b"}))
	if err := c.Flush(); err == nil {
		t.Error("a 401 was not reported by Flush")
	}
	if cb.calls != 3 {
		t.Errorf("callback called %d times, want 3 (1 refused, 2 dropped)", cb.calls)
	}
	must(t, c.Close())
	if err := c.Track(Track{UserID: "u", Event: "late"}); !errors.Is(err, ErrClosed) || cb.calls != 4 {
		t.Errorf("Track after Close = %v, callback calls %d", err, cb.calls)
	}
}
