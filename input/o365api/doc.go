// Package o365api is a client for the Office 365 Management Activity API.
//
// It has no Benthos dependency: a plain Config, a TokenSource backed by MSAL,
// subscription management, content listing that follows NextPageUri verbatim,
// blob retrieval as a stream with a streaming record decoder, and a typed
// APIError whose Action says what a caller should do with each AF code.
//
// References to management-api.md sections (§n) point at the shared summary
// of the API (docs/management-api.md); [BEATS] marks behaviour learnt from
// Elastic Beats' o365audit input.
package o365api
