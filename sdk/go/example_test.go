package analytics_test

import (
	"log"
	"os"
	"time"

	analytics "github.com/nself-org/nself-analytics/sdk/go"
)

// A client for the whole process: queue calls anywhere, Close before exiting.
func Example() {
	client, err := analytics.New(analytics.Config{
		WriteKey:      os.Getenv("ANALYTICS_WRITE_KEY"),
		Host:          "http://localhost:3206",
		FlushAt:       20,
		FlushInterval: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_ = client.Identify(analytics.Identify{
		UserID: "user-42",
		Traits: analytics.Traits{"email": "alice@example.com", "plan": "pro"},
	})
	_ = client.Track(analytics.Track{
		UserID:     "user-42",
		Event:      "subscription.created",
		Properties: analytics.Properties{"plan": "pro", "amount_cents": 999},
	})
	_ = client.Page(analytics.Page{
		AnonymousID: "anon-7f3a",
		Name:        "Pricing",
		Properties:  analytics.Properties{"url": "https://example.com/pricing", "path": "/pricing"},
	})
}

// Flush sends what is queued and waits, for example at the end of a batch job or a request
// of a short-lived serverless function.
func ExampleClient_Flush() {
	client, err := analytics.New(analytics.Config{WriteKey: "wk_...", Host: "http://localhost:3206"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	_ = client.Track(analytics.Track{AnonymousID: "anon-1", Event: "export.finished"})
	if err := client.Flush(); err != nil {
		log.Printf("analytics: %v", err)
	}
}
