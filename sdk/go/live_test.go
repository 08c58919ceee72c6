//go:build live

// Tests against the real running service, through the fault-injecting proxy of the Python test
// harness (tests/test_sdk_go.py runs them with `go test -tags live`). Each test writes what it sent
// to $NSELF_ANALYTICS_OUT/<case>.json; the harness then checks Postgres: every message stored once.

package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// sent is the manifest of one live case, read by the Python harness.
type sent struct {
	Case   string              `json:"case"`
	Mode   string              `json:"mode"`
	Key    string              `json:"key"`
	Event  string              `json:"event"`
	UserID string              `json:"user_id"`
	Traits Traits              `json:"traits,omitempty"`
	IDs    map[string][]string `json:"ids"`
	Failed int                 `json:"failed"`
}

type collector struct {
	mu     sync.Mutex
	ids    map[string][]string
	failed []error
}

func (c *collector) Success(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := reflect.ValueOf(m).FieldByName("MessageID").String() // every message type has the field
	c.ids[m.Type()] = append(c.ids[m.Type()], id)
}

func (c *collector) Failure(m Message, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = append(c.failed, err)
}

func liveEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the live tests through tests/test_sdk_go.py", name)
	}
	return v
}

// runLive sends tracks (and, with everything, an identify and a page) through the proxy in mode.
func runLive(t *testing.T, caseName, mode string, tracks int, everything bool) {
	proxy := liveEnv(t, "NSELF_ANALYTICS_PROXY")
	key := liveEnv(t, "NSELF_ANALYTICS_RUN") + "-go-" + caseName
	out := liveEnv(t, "NSELF_ANALYTICS_OUT")
	col := &collector{ids: map[string][]string{}}
	client, err := New(Config{
		WriteKey:      liveEnv(t, "NSELF_ANALYTICS_WRITE_KEY"),
		Host:          proxy + "/fault/" + mode + "/" + key,
		FlushAt:       3,
		FlushInterval: 200 * time.Millisecond,
		MaxRetries:    5,
		Callback:      col,
	})
	if err != nil {
		t.Fatal(err)
	}
	manifest := sent{Case: caseName, Mode: mode, Key: key, Event: "go_sdk_" + key, UserID: "user-" + key}
	for i := 0; i < tracks; i++ {
		must(t, client.Track(Track{UserID: manifest.UserID, Event: manifest.Event,
			Properties: Properties{"n": i, "case": caseName}}))
	}
	if everything {
		manifest.Traits = Traits{"plan": "pro", "sdk": "go", "case": caseName}
		must(t, client.Identify(Identify{UserID: manifest.UserID, Traits: manifest.Traits}))
		must(t, client.Page(Page{UserID: manifest.UserID, Name: "Pricing",
			Properties: Properties{"url": "https://example.com/pricing", "path": "/pricing"}}))
		must(t, client.Screen(Screen{UserID: manifest.UserID, Name: "Settings", Properties: Properties{"tab": "billing"}}))
		must(t, client.Group(Group{UserID: manifest.UserID, GroupID: "team-" + key, Traits: Traits{"plan": "team"}}))
		must(t, client.Alias(Alias{UserID: manifest.UserID, PreviousID: "anon-" + key}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.CloseContext(ctx); err != nil {
		t.Fatalf("CloseContext: %v", err)
	}
	manifest.IDs = col.ids
	manifest.Failed = len(col.failed)
	if len(col.failed) != 0 {
		t.Errorf("dropped messages: %v", col.failed)
	}
	if got := len(col.ids["track"]); got != tracks {
		t.Errorf("%d tracks delivered, want %d", got, tracks)
	}
	raw, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("%s.json", caseName)), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLiveDelivery(t *testing.T)          { runLive(t, "ok", "ok", 7, true) }
func TestLiveRetryAfter503(t *testing.T)     { runLive(t, "503", "503", 4, false) }
func TestLiveDroppedConnection(t *testing.T) { runLive(t, "drop", "drop", 4, false) }
func TestLiveAnswerLost(t *testing.T)        { runLive(t, "drop-after", "drop-after", 4, false) }

// The SDK never keeps a message longer than the service's de-duplication window, as published.
func TestLiveDedupeWindowMatchesTheService(t *testing.T) {
	resp, err := http.Get(liveEnv(t, "NSELF_ANALYTICS_PROXY") + "/analytics/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Info struct {
			DedupeWindowSeconds *float64 `json:"x-dedupe-window-seconds"`
		} `json:"info"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Info.DedupeWindowSeconds == nil {
		t.Fatalf("no info.x-dedupe-window-seconds in the OpenAPI (%v)", err)
	}
	if got := time.Duration(*doc.Info.DedupeWindowSeconds * float64(time.Second)); got != DedupeWindow {
		t.Errorf("the service de-duplicates for %v, the SDK assumes %v", got, DedupeWindow)
	}
}
