// Package o365sim is a local, deterministic simulator of Entra ID (the token
// endpoints MSAL and ADAL-style clients use) and of the Office 365 Management
// Activity API, served over TLS on one loopback listener.
//
// It is correct by default and takes one-shot fault overrides per test
// (Inject), the way kfake.ControlKey injects one broker error. The synthetic
// tenant is generated on the fly from (Seed, contentId): only per-blob
// metadata is kept, so it can serve millions of records.
//
// The behaviour follows /work/shared/docs/management-api.md; comments cite
// its sections as "mgmt-api §N".
package o365sim
