package o365api

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Fuzz targets for what the client reads from the network (the blob decoder's
// is FuzzRecordDecoder in decode_test.go). `make test` runs each for a few
// seconds, `make fuzz` for longer; seeds live in testdata/fuzz/<target>.

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2015-05-23T17:35:00.000Z", "2026-11-20T10:00:00", "2026-11-20", "2026-11-20T10:00", "2026-11-20T10:00:00+02:00", "2026-11-20T10:00:00.1234567", "", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) = %v, not UTC", s, got)
		}
	})
}

type fuzzTokens struct{}

func (fuzzTokens) Token(context.Context) (string, error) { return "t", nil }
func (fuzzTokens) Invalidate(string)                     {}

func FuzzNextPageURL(f *testing.F) {
	for _, s := range []string{
		"https://manage.office.com/api/v1.0/6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13/activity/feed/subscriptions/content?contentType=Audit.SharePoint&nextPage=2015101900R022885001761",
		"https://MANAGE.office.com:443/api/v1/x?nextpage=1&publisherIdentifier=abc",
		"https://evil.example/api/v1.0/x?nextPage=1",
		"https://manage.office.com.evil.example/x",
		"https://manage.office.com@evil.example/x",
		"//evil.example/x", "/api/v1.0/relative?nextPage=2", "http://manage.office.com/x", "https://manage.office.com:8443/x", "%zz",
	} {
		f.Add(s)
	}
	c, err := New(Config{TenantID: "6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13", APIURL: "https://manage.office.com", Tokens: fuzzTokens{}})
	if err != nil {
		f.Fatal(err)
	}
	base, _ := url.Parse("https://manage.office.com/api/v1.0/6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13/activity/feed/subscriptions/content?contentType=Audit.General")
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := c.sameOriginURL(base, raw)
		if err != nil {
			return
		}
		// Whatever was accepted must send the token to the API host only.
		u, perr := url.Parse(got)
		if perr != nil {
			t.Fatalf("accepted %q as %q, which does not parse: %v", raw, got, perr)
		}
		if canonicalOrigin(u) != c.origin {
			t.Fatalf("accepted %q for origin %s", got, canonicalOrigin(u))
		}
		hasPublisher := false
		for key, values := range u.Query() {
			if strings.EqualFold(key, "PublisherIdentifier") && len(values) > 0 && values[0] != "" {
				hasPublisher = true
			}
		}
		if !hasPublisher && !strings.Contains(u.RawQuery, ";") {
			t.Fatalf("accepted %q without PublisherIdentifier", got)
		}
	})
}

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"AF20022","message":"No subscription found for the specified content type"}}`,
		`{'error':{'code':'AF429','message':'Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000'}}`,
		`{"Message":"Authorization has been denied for this request."}`,
		`{"error":"invalid_client"}`, `<html>503 Service Unavailable</html>`, ``, `{"error":{"code":7}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, message := parseErrorBody(body)
		if len(message) > maxErrorMessageBytes+len("…") {
			t.Fatalf("message of %d bytes exceeds the bound", len(message))
		}
		if utf8.Valid(body) && !utf8.ValidString(message) {
			t.Fatalf("valid UTF-8 body gave an invalid message %q", message)
		}
		e := &APIError{Op: OpListContent, Status: 400, Code: code, Message: message}
		_ = e.Action()
		_ = e.Hint()
		_ = e.Error()
	})
}
