package resources

import _ "embed" // for the mappings below

// NormalizeMapping is the Bloblang in normalize.blobl: it adds an "o365" object (timestamp,
// client, record_type, tenant_id, workload, operation, user, result) to an audit record and
// changes no other field. It needs the o365_parse_client_ip method this package registers.
//
//go:embed normalize.blobl
var NormalizeMapping string

// RedactDLPMapping is the Bloblang in redact_dlp.blobl: it removes the detected sensitive values
// from DLP records, marks them with o365.redacted: true, and leaves other records unchanged.
//
//go:embed redact_dlp.blobl
var RedactDLPMapping string
