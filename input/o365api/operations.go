package o365api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Subscription is one entry of subscriptions/list.
type Subscription struct {
	ContentType string `json:"contentType"`
	Status      string `json:"status"` // "enabled" or "disabled"
}

// ContentItem is one available content blob from subscriptions/content.
type ContentItem struct {
	ContentType       string
	ContentID         string    // opaque; contains '$'
	ContentURI        string    // use verbatim with FetchBlob
	ContentCreated    time.Time // UTC
	ContentExpiration time.Time // UTC; zero when absent or unparseable
}

// listTimeLayout is how startTime/endTime are sent: the docs accept
// YYYY-MM-DDTHH:MM:SS in UTC without a zone (§3.6), as [BEATS] sends it.
const listTimeLayout = "2006-01-02T15:04:05"

// Next-page headers: the reference names NextPageUri, the troubleshooting
// guide NextPageUrl (§3.6); [BEATS] checks both.
const (
	headerNextPageURI = "NextPageUri"
	headerNextPageURL = "NextPageUrl"
)

// ListSubscriptions returns the tenant's subscriptions.
func (c *Client) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	resp, err := c.do(ctx, OpListSubscriptions, http.MethodGet, c.feedURLFor("/subscriptions/list", nil))
	if err != nil {
		return nil, fmt.Errorf("listing subscriptions: %w", err)
	}
	defer drainAndClose(resp.Body)
	var subs []Subscription
	if err := decodeJSONBody(resp.Body, &subs); err != nil {
		return nil, fmt.Errorf("listing subscriptions: %w", err)
	}
	return subs, nil
}

// StartSubscription starts (or re-enables) the subscription to contentType,
// without a webhook. A subscription that is already enabled is success.
// The docs ask for 15 minutes between starts: do not call it in a loop.
func (c *Client) StartSubscription(ctx context.Context, contentType string) (Subscription, error) {
	target := c.feedURLFor("/subscriptions/start", url.Values{"contentType": {contentType}})
	resp, err := c.do(ctx, OpStartSubscription, http.MethodPost, target)
	if err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Action() == ActionAlreadyEnabled {
			return Subscription{ContentType: contentType, Status: "enabled"}, nil
		}
		return Subscription{}, fmt.Errorf("starting subscription to %s: %w", contentType, err)
	}
	defer drainAndClose(resp.Body)
	sub := Subscription{ContentType: contentType, Status: "enabled"}
	if err := decodeJSONBody(resp.Body, &sub); err != nil {
		return Subscription{}, fmt.Errorf("starting subscription to %s: %w", contentType, err)
	}
	return sub, nil
}

// StopSubscription stops the subscription to contentType. Content of the
// stopped period stays unreachable even after a later start.
func (c *Client) StopSubscription(ctx context.Context, contentType string) error {
	target := c.feedURLFor("/subscriptions/stop", url.Values{"contentType": {contentType}})
	resp, err := c.do(ctx, OpStopSubscription, http.MethodPost, target)
	if err != nil {
		return fmt.Errorf("stopping subscription to %s: %w", contentType, err)
	}
	drainAndClose(resp.Body)
	return nil
}

// ListContent lists the content blobs of contentType created in
// [start, end) and calls page once per page, in order. Both times zero lists
// the service's default (about the last 24 hours). Next pages are followed
// verbatim from the NextPageUri (or NextPageUrl) header, re-adding
// PublisherIdentifier; a response whose next page names a host other than
// the API's is an error, and its page is not delivered. An error returned by
// page stops the listing and is returned as is.
func (c *Client) ListContent(ctx context.Context, contentType string, start, end time.Time, page func([]ContentItem) error) error {
	query := url.Values{"contentType": {contentType}}
	switch {
	case !start.IsZero() && !end.IsZero():
		query.Set("startTime", start.UTC().Format(listTimeLayout))
		query.Set("endTime", end.UTC().Format(listTimeLayout))
	case !start.IsZero() || !end.IsZero():
		// The service answers AF20030 to one without the other.
		return fmt.Errorf("listing content for %s: start and end must both be set or both be zero", contentType)
	}
	target := c.feedURLFor("/subscriptions/content", query)
	for pageNumber := 1; target != ""; pageNumber++ {
		items, next, err := c.listContentPage(ctx, target)
		if err != nil {
			return fmt.Errorf("listing content for %s, page %d: %w", contentType, pageNumber, err)
		}
		if err := page(items); err != nil {
			return err
		}
		target = next
	}
	return nil
}

// listContentPage fetches one page and returns its items and the checked
// URL of the next page ("" after the last page).
func (c *Client) listContentPage(ctx context.Context, target string) ([]ContentItem, string, error) {
	resp, err := c.do(ctx, OpListContent, http.MethodGet, target)
	if err != nil {
		return nil, "", err
	}
	defer drainAndClose(resp.Body)
	var wire []struct {
		ContentType       string `json:"contentType"`
		ContentID         string `json:"contentId"`
		ContentURI        string `json:"contentUri"`
		ContentCreated    string `json:"contentCreated"`
		ContentExpiration string `json:"contentExpiration"`
	}
	if err := decodeJSONBody(resp.Body, &wire); err != nil {
		return nil, "", err
	}
	items := make([]ContentItem, len(wire))
	for i, w := range wire {
		created, err := ParseTime(w.ContentCreated)
		if err != nil {
			// The listing cursor orders blobs by this time: a blob without
			// one cannot be placed, so the page is refused, not guessed at.
			return nil, "", fmt.Errorf("item %d (%s): contentCreated: %w", i, w.ContentID, err)
		}
		expires, _ := ParseTime(w.ContentExpiration)
		items[i] = ContentItem{
			ContentType:       w.ContentType,
			ContentID:         w.ContentID,
			ContentURI:        w.ContentURI,
			ContentCreated:    created,
			ContentExpiration: expires,
		}
	}

	next := resp.Header.Get(headerNextPageURI)
	if next == "" {
		next = resp.Header.Get(headerNextPageURL)
	}
	if next == "" {
		return items, "", nil
	}
	next, err = c.sameOriginURL(resp.Request.URL, next)
	if err != nil {
		return nil, "", fmt.Errorf("following the next page: %w", err)
	}
	return items, next, nil
}

// FetchBlob GETs contentURI (adding PublisherIdentifier) and returns the
// body as a stream for NewRecordDecoder; the caller closes it. Cancelling ctx
// aborts the stream. A contentURI on a host other than the API's is refused.
func (c *Client) FetchBlob(ctx context.Context, contentURI string) (io.ReadCloser, error) {
	target, err := c.sameOriginURL(nil, contentURI)
	if err != nil {
		return nil, fmt.Errorf("fetching blob: %w", err)
	}
	resp, err := c.do(ctx, OpFetchBlob, http.MethodGet, target)
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", contentURI, err)
	}
	return resp.Body, nil
}

// decodeJSONBody decodes a success body into v; an empty body (stop answers
// with one) leaves v unchanged.
func decodeJSONBody(body io.Reader, v any) error {
	err := json.NewDecoder(body).Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("decoding response: %w", err)
}
