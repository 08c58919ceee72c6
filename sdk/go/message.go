package analytics

import (
	"encoding/json"
	"errors"
	"time"
)

// Properties holds the free-form properties of a Track or Page message.
type Properties map[string]interface{}

// Traits holds the traits of an identified user (email, name, plan, ...).
type Traits map[string]interface{}

// Context holds extra information about the message's surroundings (ip, locale, app, ...).
// The SDK adds a "library" entry naming itself unless the context already has one.
type Context map[string]interface{}

// Message is one of Track, Identify, Page, Screen, Group or Alias; it is what Enqueue accepts and
// what the Callback receives, with MessageID and Timestamp filled in by the SDK when they were left
// empty.
type Message interface {
	// Type is the message type as sent on the wire: "track", "identify", "page", "screen",
	// "group" or "alias".
	Type() string
	validate() error
	prepare(now time.Time, defaults Properties) (Message, wireMessage)
}

// Track records that a user (or an anonymous visitor) performed an action.
type Track struct {
	// MessageID identifies the message for deduplication; empty means a random UUID (recommended).
	MessageID string
	// UserID is the id of a known user; UserID or AnonymousID is required.
	UserID string
	// AnonymousID is the id of a visitor who is not identified yet.
	AnonymousID string
	// Event is the name of the action, such as "subscription.created"; required.
	Event string
	// Properties describe the action.
	Properties Properties
	// Context carries extra information about the call.
	Context Context
	// Timestamp is when the action happened; zero means when the message was queued.
	Timestamp time.Time
}

// Identify attaches traits to a known user.
type Identify struct {
	// MessageID identifies the message for deduplication; empty means a random UUID (recommended).
	MessageID string
	// UserID is the id of the user; required.
	UserID string
	// AnonymousID is the id the user had before being identified, if any.
	AnonymousID string
	// Traits are stored on the user's profile.
	Traits Traits
	// Context carries extra information about the call.
	Context Context
	// Timestamp is when the traits were observed; zero means when the message was queued.
	Timestamp time.Time
}

// Page records a page view; the service stores it as the event "$pageview".
type Page struct {
	// MessageID identifies the message for deduplication; empty means a random UUID (recommended).
	MessageID string
	// UserID is the id of a known user; UserID or AnonymousID is required.
	UserID string
	// AnonymousID is the id of a visitor who is not identified yet.
	AnonymousID string
	// Name is an optional name of the page, such as "Pricing".
	Name string
	// Properties describe the page: url, path, referrer, title, ...
	Properties Properties
	// Context carries extra information about the call.
	Context Context
	// Timestamp is when the page was viewed; zero means when the message was queued.
	Timestamp time.Time
}

// Screen records a screen view of a mobile app; the service stores it as the event "$screen".
type Screen struct {
	// MessageID identifies the message for deduplication; empty means a random UUID (recommended).
	MessageID string
	// UserID is the id of a known user; UserID or AnonymousID is required.
	UserID string
	// AnonymousID is the id of a visitor who is not identified yet.
	AnonymousID string
	// Name is the name of the screen, such as "Settings".
	Name string
	// Properties describe the screen.
	Properties Properties
	// Context carries extra information about the call.
	Context Context
	// Timestamp is when the screen was viewed; zero means when the message was queued.
	Timestamp time.Time
}

// Group records that a user belongs to a group (a company, team or account).
type Group struct {
	// MessageID identifies the message for deduplication; empty means a random UUID (recommended).
	MessageID string
	// UserID is the id of a known user; UserID or AnonymousID is required.
	UserID string
	// AnonymousID is the id of a visitor who is not identified yet.
	AnonymousID string
	// GroupID is the id of the group; required.
	GroupID string
	// Traits describe the group: name, plan, ...
	Traits Traits
	// Context carries extra information about the call.
	Context Context
	// Timestamp is when it happened; zero means when the message was queued.
	Timestamp time.Time
}

// Alias records that PreviousID (an earlier user or anonymous id) is the same person as UserID.
type Alias struct {
	// MessageID identifies the message for deduplication; empty means a random UUID (recommended).
	MessageID string
	// UserID is the person's id from now on; required.
	UserID string
	// PreviousID is the id the person had before; required.
	PreviousID string
	// Context carries extra information about the call.
	Context Context
	// Timestamp is when it happened; zero means when the message was queued.
	Timestamp time.Time
}

// Errors returned by Enqueue, Track, Identify and Page for messages that cannot be sent.
var (
	// ErrMissingUser means neither UserID nor AnonymousID was set.
	ErrMissingUser = errors.New("analytics: a message needs a UserID or an AnonymousID")
	// ErrMissingUserID means an Identify message has no UserID.
	ErrMissingUserID = errors.New("analytics: Identify needs a UserID")
	// ErrMissingEvent means a Track message has no Event name.
	ErrMissingEvent = errors.New("analytics: Track needs an Event name")
	// ErrMessageTooLarge means the message alone exceeds the service's request size limit.
	ErrMessageTooLarge = errors.New("analytics: message exceeds the maximum batch size")
	// ErrMissingGroupID means a Group message has no GroupID.
	ErrMissingGroupID = errors.New("analytics: Group needs a GroupID")
	// ErrMissingPreviousID means an Alias message lacks its UserID or PreviousID.
	ErrMissingPreviousID = errors.New("analytics: Alias needs a UserID and a PreviousID")
	// ErrUnknownMessage means Enqueue received a type other than Track, Identify, Page, Screen,
	// Group or Alias.
	ErrUnknownMessage = errors.New("analytics: unknown message type (want Track, Identify, Page, Screen, Group or Alias)")
)

// Type returns "track".
func (Track) Type() string { return "track" }

// Type returns "identify".
func (Identify) Type() string { return "identify" }

// Type returns "page".
func (Page) Type() string { return "page" }

// Type returns "screen".
func (Screen) Type() string { return "screen" }

// Type returns "group".
func (Group) Type() string { return "group" }

// Type returns "alias".
func (Alias) Type() string { return "alias" }

func (m Track) validate() error {
	if m.Event == "" {
		return ErrMissingEvent
	}
	if m.UserID == "" && m.AnonymousID == "" {
		return ErrMissingUser
	}
	return nil
}

func (m Identify) validate() error {
	if m.UserID == "" {
		return ErrMissingUserID
	}
	return nil
}

func (m Page) validate() error {
	if m.UserID == "" && m.AnonymousID == "" {
		return ErrMissingUser
	}
	return nil
}

func (m Screen) validate() error {
	if m.UserID == "" && m.AnonymousID == "" {
		return ErrMissingUser
	}
	return nil
}

func (m Group) validate() error {
	if m.GroupID == "" {
		return ErrMissingGroupID
	}
	if m.UserID == "" && m.AnonymousID == "" {
		return ErrMissingUser
	}
	return nil
}

func (m Alias) validate() error {
	if m.UserID == "" || m.PreviousID == "" {
		return ErrMissingPreviousID
	}
	return nil
}

// wireMessage is a message as the service reads it (Segment field names).
type wireMessage struct {
	Type        string                 `json:"type"`
	MessageID   string                 `json:"messageId"`
	Timestamp   string                 `json:"timestamp"`
	UserID      string                 `json:"userId,omitempty"`
	AnonymousID string                 `json:"anonymousId,omitempty"`
	PreviousID  string                 `json:"previousId,omitempty"`
	GroupID     string                 `json:"groupId,omitempty"`
	Event       string                 `json:"event,omitempty"`
	Name        string                 `json:"name,omitempty"`
	Properties  map[string]interface{} `json:"properties,omitempty"`
	Traits      map[string]interface{} `json:"traits,omitempty"`
	Context     map[string]interface{} `json:"context"`
}

func fill(id *string, ts *time.Time, now time.Time) {
	if *id == "" {
		*id = newUUID()
	}
	if ts.IsZero() {
		*ts = now
	}
}

func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func withLibrary(ctx Context) map[string]interface{} {
	out := make(map[string]interface{}, len(ctx)+1)
	for k, v := range ctx {
		out[k] = v
	}
	if _, ok := out["library"]; !ok {
		out["library"] = map[string]interface{}{"name": LibraryName, "version": Version}
	}
	return out
}

// withDefaults merges the default properties under a message's own (which win).
func withDefaults(defaults, own Properties) map[string]interface{} {
	if len(defaults) == 0 {
		return own
	}
	out := make(map[string]interface{}, len(defaults)+len(own))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

func (m Track) prepare(now time.Time, defaults Properties) (Message, wireMessage) {
	fill(&m.MessageID, &m.Timestamp, now)
	return m, wireMessage{
		Type: "track", MessageID: m.MessageID, Timestamp: formatTime(m.Timestamp),
		UserID: m.UserID, AnonymousID: m.AnonymousID, Event: m.Event,
		Properties: withDefaults(defaults, m.Properties), Context: withLibrary(m.Context),
	}
}

func (m Identify) prepare(now time.Time, _ Properties) (Message, wireMessage) {
	fill(&m.MessageID, &m.Timestamp, now)
	return m, wireMessage{
		Type: "identify", MessageID: m.MessageID, Timestamp: formatTime(m.Timestamp),
		UserID: m.UserID, AnonymousID: m.AnonymousID,
		Traits: m.Traits, Context: withLibrary(m.Context),
	}
}

func (m Page) prepare(now time.Time, defaults Properties) (Message, wireMessage) {
	fill(&m.MessageID, &m.Timestamp, now)
	return m, wireMessage{
		Type: "page", MessageID: m.MessageID, Timestamp: formatTime(m.Timestamp),
		UserID: m.UserID, AnonymousID: m.AnonymousID, Name: m.Name,
		Properties: withDefaults(defaults, m.Properties), Context: withLibrary(m.Context),
	}
}

func (m Screen) prepare(now time.Time, defaults Properties) (Message, wireMessage) {
	fill(&m.MessageID, &m.Timestamp, now)
	return m, wireMessage{
		Type: "screen", MessageID: m.MessageID, Timestamp: formatTime(m.Timestamp),
		UserID: m.UserID, AnonymousID: m.AnonymousID, Name: m.Name,
		Properties: withDefaults(defaults, m.Properties), Context: withLibrary(m.Context),
	}
}

func (m Group) prepare(now time.Time, _ Properties) (Message, wireMessage) {
	fill(&m.MessageID, &m.Timestamp, now)
	return m, wireMessage{
		Type: "group", MessageID: m.MessageID, Timestamp: formatTime(m.Timestamp),
		UserID: m.UserID, AnonymousID: m.AnonymousID, GroupID: m.GroupID,
		Traits: m.Traits, Context: withLibrary(m.Context),
	}
}

func (m Alias) prepare(now time.Time, _ Properties) (Message, wireMessage) {
	fill(&m.MessageID, &m.Timestamp, now)
	return m, wireMessage{
		Type: "alias", MessageID: m.MessageID, Timestamp: formatTime(m.Timestamp),
		UserID: m.UserID, PreviousID: m.PreviousID, Context: withLibrary(m.Context),
	}
}

// normalize turns a pointer to a message into the value; nil and unknown types are refused.
func normalize(m Message) (Message, error) {
	switch v := m.(type) {
	case Track, Identify, Page, Screen, Group, Alias:
		return m, nil
	case *Track:
		return deref(v)
	case *Identify:
		return deref(v)
	case *Page:
		return deref(v)
	case *Screen:
		return deref(v)
	case *Group:
		return deref(v)
	case *Alias:
		return deref(v)
	}
	return nil, ErrUnknownMessage
}

func deref[T Message](p *T) (Message, error) {
	if p == nil {
		return nil, ErrUnknownMessage
	}
	return *p, nil
}

// queued is a validated message with its encoded form, ready for a batch.
type queued struct {
	msg      Message
	json     json.RawMessage
	queuedAt time.Time
}
