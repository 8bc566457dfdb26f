package o365api

import (
	"fmt"
	"slices"
	"strings"
)

// Content types of the Management Activity API; any other value is
// rejected by the service with AF20020 (management-api.md §3.1).
const (
	ContentTypeAzureActiveDirectory = "Audit.AzureActiveDirectory"
	ContentTypeExchange             = "Audit.Exchange"
	ContentTypeSharePoint           = "Audit.SharePoint"
	ContentTypeGeneral              = "Audit.General"
	ContentTypeDLP                  = "DLP.All"
)

// AllContentTypes lists every content type, in the order the docs list them.
var AllContentTypes = []string{
	ContentTypeAzureActiveDirectory, ContentTypeExchange, ContentTypeSharePoint, ContentTypeGeneral, ContentTypeDLP,
}

// IsContentType reports whether s is one of AllContentTypes, spelled exactly.
func IsContentType(s string) bool { return slices.Contains(AllContentTypes, s) }

// Cloud names a Microsoft 365 cloud whose hosts and token scope differ.
type Cloud string

// Clouds the API is offered in.
const (
	CloudCommercial Cloud = "commercial"
	CloudGCC        Cloud = "gcc"
	CloudGCCHigh    Cloud = "gcc_high"
	CloudDoD        Cloud = "dod"
)

// AllClouds lists every Cloud that CloudEndpoints knows.
var AllClouds = []Cloud{CloudCommercial, CloudGCC, CloudGCCHigh, CloudDoD}

// Endpoints are the hosts and token resource of one cloud.
type Endpoints struct {
	APIURL   string // scheme + host of the Activity API, e.g. https://manage.office.com
	LoginURL string // scheme + host of Entra ID, e.g. https://login.microsoftonline.com
	Resource string // token audience, e.g. https://manage.office.com
}

// Scope is the MSAL v2 scope for the resource: Resource + "/.default".
func (e Endpoints) Scope() string { return e.Resource + "/.default" }

// cloudHosts maps each cloud to its API and login hosts (management-api.md §1).
// GCC used to share manage.office.com with commercial; it now has its own
// host, while its login host is still the commercial one.
var cloudHosts = map[Cloud]struct{ api, login string }{
	CloudCommercial: {"manage.office.com", "login.microsoftonline.com"},
	CloudGCC:        {"manage-gcc.office.com", "login.microsoftonline.com"},
	CloudGCCHigh:    {"manage.office365.us", "login.microsoftonline.us"},
	CloudDoD:        {"manage.protection.apps.mil", "login.microsoftonline.us"},
}

// CloudEndpoints returns the API and login endpoints of cloud c. The token
// resource is the API host itself, as the troubleshooting guide uses it.
func CloudEndpoints(c Cloud) (Endpoints, error) {
	hosts, ok := cloudHosts[c]
	if !ok {
		names := make([]string, len(AllClouds))
		for i, known := range AllClouds {
			names[i] = string(known)
		}
		return Endpoints{}, fmt.Errorf("unknown cloud %q: must be one of %s", c, strings.Join(names, ", "))
	}
	api := "https://" + hosts.api
	return Endpoints{APIURL: api, LoginURL: "https://" + hosts.login, Resource: api}, nil
}
