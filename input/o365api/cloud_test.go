package o365api

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCloudEndpoints(t *testing.T) {
	tests := []struct {
		cloud     Cloud
		api       string
		login     string
		wantScope string
	}{
		{CloudCommercial, "https://manage.office.com", "https://login.microsoftonline.com", "https://manage.office.com/.default"},
		{CloudGCC, "https://manage-gcc.office.com", "https://login.microsoftonline.com", "https://manage-gcc.office.com/.default"},
		{CloudGCCHigh, "https://manage.office365.us", "https://login.microsoftonline.us", "https://manage.office365.us/.default"},
		{CloudDoD, "https://manage.protection.apps.mil", "https://login.microsoftonline.us", "https://manage.protection.apps.mil/.default"},
	}
	require.Len(t, tests, len(AllClouds))
	for _, tt := range tests {
		e, err := CloudEndpoints(tt.cloud)
		require.NoError(t, err, tt.cloud)
		assert.Equal(t, Endpoints{APIURL: tt.api, LoginURL: tt.login, Resource: tt.api}, e, tt.cloud)
		assert.Equal(t, tt.wantScope, e.Scope(), tt.cloud)
	}

	_, err := CloudEndpoints("china")
	require.Error(t, err)
	assert.Equal(t, `unknown cloud "china": must be one of commercial, gcc, gcc_high, dod`, err.Error())
	_, err = CloudEndpoints("GCC")
	assert.Error(t, err, "cloud names are exact")
}

func TestIsContentType(t *testing.T) {
	for _, ct := range AllContentTypes {
		assert.True(t, IsContentType(ct), ct)
	}
	for _, ct := range []string{"", "audit.exchange", "Audit.Exchange ", "DLP", "Audit.Teams"} {
		assert.False(t, IsContentType(ct), ct)
	}
}
