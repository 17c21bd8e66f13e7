package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Client calls one Hookline API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the API at base (http://127.0.0.1:8080), sending
// token as a bearer token when it is not empty. A nil hc uses a client with
// a 30 s timeout.
func New(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: hc}
}

// Error is an error answer of the API.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("API answered %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// maxAnswer bounds an answer read into memory.
const maxAnswer = 32 << 20

// Do sends body as JSON (when not nil) and decodes a 2xx answer into out
// (when not nil); any other answer is an *Error. For calls this package
// has no method for.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	data, err := c.send(ctx, method, path, body)
	if err != nil || out == nil || len(data) == 0 {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: decode the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// send makes one request and returns the body of a 2xx answer; any other
// answer is an *Error.
func (c *Client) send(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(data, &eb) != nil || eb.Error == nil {
			eb.Error = &Error{Code: "http", Message: strings.TrimSpace(string(data))}
		}
		eb.Error.Status = resp.StatusCode
		return nil, eb.Error
	}
	return data, nil
}

// Ptr returns a pointer to v: for the optional fields of
// schemas.WebhookInput.
func Ptr[T any](v T) *T { return &v }

// CreateWebhook creates a webhook.
func (c *Client) CreateWebhook(ctx context.Context, in schemas.WebhookInput) (schemas.PublicWebhook, error) {
	var w schemas.PublicWebhook
	err := c.Do(ctx, http.MethodPost, "/v1/webhooks", in, &w)
	return w, err
}

// Webhook reads a webhook.
func (c *Client) Webhook(ctx context.Context, id string) (schemas.PublicWebhook, error) {
	var w schemas.PublicWebhook
	err := c.Do(ctx, http.MethodGet, "/v1/webhooks/"+url.PathEscape(id), nil, &w)
	return w, err
}

// UpdateWebhook changes the fields of in that are set.
func (c *Client) UpdateWebhook(ctx context.Context, id string, in schemas.WebhookInput) (schemas.PublicWebhook, error) {
	var w schemas.PublicWebhook
	err := c.Do(ctx, http.MethodPatch, "/v1/webhooks/"+url.PathEscape(id), in, &w)
	return w, err
}

// DeleteWebhook deletes a webhook.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/webhooks/"+url.PathEscape(id), nil, nil)
}

// PublishEvents publishes events (all or none) and returns their ids.
func (c *Client) PublishEvents(ctx context.Context, evs ...schemas.Event) ([]string, error) {
	var out struct {
		IDs []string `json:"ids"`
	}
	err := c.Do(ctx, http.MethodPost, "/v1/events", evs, &out)
	return out.IDs, err
}

// DeliveryQuery filters a webhook's deliveries; zero fields do not filter.
type DeliveryQuery struct {
	State, EventType, Status string
	Since, Until             time.Time
	Limit                    int
	Cursor                   string
}

func (q DeliveryQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"state": q.State, "event_type": q.EventType, "status": q.Status, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// DeliveryPage is one page of a delivery list; NextCursor is empty on the
// last.
type DeliveryPage struct {
	Data       []projections.Delivery `json:"data"`
	NextCursor string                 `json:"next_cursor,omitempty"`
}

// Deliveries lists a webhook's deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context, webhookID string, q DeliveryQuery) (DeliveryPage, error) {
	var p DeliveryPage
	path := "/v1/webhooks/" + url.PathEscape(webhookID) + "/deliveries"
	if v := q.values(); len(v) > 0 {
		path += "?" + v.Encode()
	}
	err := c.Do(ctx, http.MethodGet, path, nil, &p)
	return p, err
}

// Delivery reads one delivery with its request and attempts.
func (c *Client) Delivery(ctx context.Context, id string) (projections.Delivery, error) {
	var d projections.Delivery
	err := c.Do(ctx, http.MethodGet, "/v1/deliveries/"+url.PathEscape(id), nil, &d)
	return d, err
}

// Redeliver sends a delivery again under a new id; force also redelivers
// one that did not fail.
func (c *Client) Redeliver(ctx context.Context, id string, force bool) (projections.Delivery, error) {
	var d projections.Delivery
	err := c.Do(ctx, http.MethodPost, "/v1/deliveries/"+url.PathEscape(id)+"/redeliver", map[string]bool{"force": force}, &d)
	return d, err
}

// SendTest sends a test delivery to a webhook (event type hookline.ping, or
// eventType when not empty) and returns it, pending.
func (c *Client) SendTest(ctx context.Context, webhookID, eventType string) (projections.Delivery, error) {
	var d projections.Delivery
	var body any
	if eventType != "" {
		body = map[string]string{"event_type": eventType}
	}
	err := c.Do(ctx, http.MethodPost, "/v1/webhooks/"+url.PathEscape(webhookID)+"/test", body, &d)
	return d, err
}

// RotateSecret gives a webhook a new secret (generated when secret is
// empty, and then in the answer), the old one signing too for overlap.
func (c *Client) RotateSecret(ctx context.Context, webhookID, secret string, overlap time.Duration) (schemas.PublicWebhook, error) {
	in := map[string]any{"overlap_seconds": int(overlap / time.Second)}
	if secret != "" {
		in["secret"] = secret
	}
	var w schemas.PublicWebhook
	err := c.Do(ctx, http.MethodPost, "/v1/webhooks/"+url.PathEscape(webhookID)+"/rotate-secret", in, &w)
	return w, err
}

// Redelivered is the answer of RedeliverFailed.
type Redelivered struct {
	Count       int      `json:"count"`
	DeliveryIDs []string `json:"delivery_ids"`
}

// RedeliverFailed redelivers a webhook's failed deliveries created in
// [since, until) (zero: unbounded) that are not redelivered yet.
func (c *Client) RedeliverFailed(ctx context.Context, webhookID string, since, until time.Time) (Redelivered, error) {
	body := map[string]time.Time{}
	if !since.IsZero() {
		body["since"] = since
	}
	if !until.IsZero() {
		body["until"] = until
	}
	var out Redelivered
	err := c.Do(ctx, http.MethodPost, "/v1/webhooks/"+url.PathEscape(webhookID)+"/redeliver-failed", body, &out)
	return out, err
}

// CreateReplay starts a replay.
func (c *Client) CreateReplay(ctx context.Context, req schemas.ReplayRequest) (schemas.PublicReplay, error) {
	var r schemas.PublicReplay
	err := c.Do(ctx, http.MethodPost, "/v1/replays", req, &r)
	return r, err
}

// Replay reads a replay's progress.
func (c *Client) Replay(ctx context.Context, id string) (schemas.PublicReplay, error) {
	var r schemas.PublicReplay
	err := c.Do(ctx, http.MethodGet, "/v1/replays/"+url.PathEscape(id), nil, &r)
	return r, err
}

// CancelReplay stops a running replay.
func (c *Client) CancelReplay(ctx context.Context, id string) (schemas.PublicReplay, error) {
	var r schemas.PublicReplay
	err := c.Do(ctx, http.MethodDelete, "/v1/replays/"+url.PathEscape(id), nil, &r)
	return r, err
}

// Metrics returns the Prometheus text of GET /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	data, err := c.send(ctx, http.MethodGet, "/metrics", nil)
	return string(data), err
}
