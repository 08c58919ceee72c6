// Package analytics is the Go server SDK of nself-analytics, the self-hosted analytics service.
//
// A Client queues Track, Identify, Page, Screen, Group and Alias calls in memory and sends them in the background to
// the service's POST /analytics/batch endpoint: a batch leaves when FlushAt messages are queued,
// every FlushInterval, on Flush and on Close. Failed requests (network errors, 429, 5xx) are
// retried with exponential backoff and jitter; a 503 or 429 carrying Retry-After is retried after
// the delay the service asks for. Every message gets a random UUID message id and a timestamp when
// it is queued, and a retry resends the very same message, so the service stores it exactly once
// even when an earlier attempt was accepted but its answer was lost.
//
// The package uses the standard library only.
//
//	client, err := analytics.New(analytics.Config{
//		WriteKey: os.Getenv("ANALYTICS_WRITE_KEY"),
//		Host:     "http://localhost:3206",
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer client.Close() // flushes what is still queued, within Config.ShutdownTimeout
//
//	client.Track(analytics.Track{
//		UserID:     "user-42",
//		Event:      "subscription.created",
//		Properties: analytics.Properties{"plan": "pro", "amount_cents": 999},
//	})
package analytics
