// Package o365api is a client for the Office 365 Management Activity API.
//
// It has no Benthos dependency: a plain Config, a TokenSource backed by MSAL,
// subscription management, content listing that follows NextPageUri verbatim,
// blob retrieval as a stream with a streaming record decoder, and a typed
// APIError whose Action says what a caller should do with each AF code.
//
// CONTRACT (written before the implementation so that the input package can be
// built in parallel): the exported identifiers below are what the input uses.
// Implementations may add exported identifiers but must keep these.
package o365api
