package resources

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runMapping applies a mapping the way the mapping processor does and returns the decoded result.
func runMapping(t *testing.T, mapping, record string, meta map[string]string) map[string]any {
	t.Helper()
	exe, err := bloblang.Parse(mapping)
	require.NoError(t, err)
	msg := service.NewMessage([]byte(record))
	for k, v := range meta {
		msg.MetaSetMut(k, v)
	}
	out, err := msg.BloblangQuery(exe)
	require.NoError(t, err)
	require.NotNil(t, out)
	b, err := out.AsBytes()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got), string(b))
	return got
}

func TestNormalizeMapping(t *testing.T) {
	tests := []struct {
		name   string
		record string
		want   string // the expected o365 object
	}{
		{
			name:   "entra logon",
			record: `{"CreationTime":"2015-06-29T20:03:19","Id":"80c76bd2","Operation":"UserLoggedIn","OrganizationId":"41463f53","RecordType":15,"ResultStatus":"Succeeded","UserType":0,"Workload":"AzureActiveDirectory","ClientIP":"[2001:db8::abcd]:12345","UserId":"admin@contoso.com"}`,
			want:   `{"timestamp":"2015-06-29T20:03:19Z","client":{"ip":"2001:db8::abcd","port":12345},"record_type":{"id":15,"name":"AzureActiveDirectoryStsLogon"},"tenant_id":"41463f53","workload":"AzureActiveDirectory","operation":"UserLoggedIn","user":"admin@contoso.com","result":"success"}`,
		},
		{
			name:   "exchange admin with fallback ip and unknown type",
			record: `{"CreationTime":"2024-01-02T03:04:05.1234567Z","Operation":"Set-Mailbox","OrganizationID":"t1","RecordType":117,"ResultStatus":"False","Workload":"Exchange","ClientIPAddress":"10.1.2.3:443","UserId":"NT AUTHORITY\\SYSTEM"}`,
			want:   `{"timestamp":"2024-01-02T03:04:05.1234567Z","client":{"ip":"10.1.2.3","port":443},"record_type":{"id":117},"tenant_id":"t1","workload":"Exchange","operation":"Set-Mailbox","user":"NT AUTHORITY\\SYSTEM","result":"failure"}`,
		},
		{
			name:   "null ip and partial result",
			record: `{"CreationTime":"2024-01-02T03:04:05+02:00","RecordType":216,"ClientIP":null,"ResultStatus":"PartiallySucceeded"}`,
			want:   `{"timestamp":"2024-01-02T01:04:05Z","record_type":{"id":216,"name":"Viva Goals"},"result":"partial"}`,
		},
		{
			name:   "malformed everything",
			record: `{"CreationTime":"yesterday","RecordType":-1,"ActorIpAddress":"ffff:10.11.0.229","ResultStatus":"Weird"}`,
			want:   `{"client":{"address":"ffff:10.11.0.229"},"record_type":{"id":-1},"result":"weird"}`,
		},
		{
			name:   "empty record",
			record: `{}`,
			want:   `{}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runMapping(t, NormalizeMapping, tc.record, nil)
			var want, orig map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.want), &want))
			require.NoError(t, json.Unmarshal([]byte(tc.record), &orig))
			assert.Equal(t, want, got["o365"])
			delete(got, "o365")
			assert.Equal(t, orig, got, "original fields must be unchanged")
		})
	}
}

func TestRedactDLPMapping(t *testing.T) {
	dlp := `{"Operation":"DlpRuleMatch","Workload":"Exchange","RecordType":13,"UserId":"DlpAgent","SensitiveInfoDetectionIsIncluded":true,"PolicyDetails":[{"PolicyId":"p1","PolicyName":"PCI","Rules":[{"RuleId":"r1","RuleName":"Cards","ConditionsMatched":{"SensitiveInformation":[{"SensitiveType":"50842eb7","Count":2,"Confidence":85,"SensitiveInformationDetections":{"DetectedValues":[{"Name":"Credit Card Number","Value":"4111111111111111"}],"ResultsTruncated":false}},{"SensitiveType":"a44669fe","Count":1,"Confidence":75,"SensitiveInformationDetections":"{\"DetectedValues\":[{\"Name\":\"SSN\",\"Value\":\"078-05-1120\"}],\"ResultsTruncated\":true}"},{"SensitiveType":"y","SensitiveInformationDetections":"078-05-1120"}]}}]}]}`

	got := runMapping(t, RedactDLPMapping, dlp, nil)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "4111111111111111")
	assert.NotContains(t, string(b), "078-05-1120")
	assert.NotContains(t, string(b), "DetectedValues")
	assert.Equal(t, map[string]any{"redacted": true}, got["o365"])

	si := got["PolicyDetails"].([]any)[0].(map[string]any)["Rules"].([]any)[0].(map[string]any)["ConditionsMatched"].(map[string]any)["SensitiveInformation"].([]any)
	require.Len(t, si, 3)
	assert.Equal(t, map[string]any{"SensitiveType": "50842eb7", "Count": 2.0, "Confidence": 85.0, "SensitiveInformationDetections": map[string]any{"ResultsTruncated": false}}, si[0])
	assert.Equal(t, map[string]any{"SensitiveType": "a44669fe", "Count": 1.0, "Confidence": 75.0, "SensitiveInformationDetections": map[string]any{"ResultsTruncated": true}}, si[1])
	assert.Equal(t, map[string]any{"SensitiveType": "y"}, si[2])

	t.Run("by content type", func(t *testing.T) {
		got := runMapping(t, RedactDLPMapping, `{"Operation":"Other","DetectedValues":["x"]}`, map[string]string{"o365_content_type": "DLP.All"})
		assert.Equal(t, map[string]any{"Operation": "Other", "o365": map[string]any{"redacted": true}}, got)
	})
	t.Run("other records unchanged", func(t *testing.T) {
		exe, err := bloblang.Parse(RedactDLPMapping)
		require.NoError(t, err)
		const rec = `{"Operation":"FileAccessed",  "DetectedValues":["kept"]}`
		msg := service.NewMessage([]byte(rec))
		msg.MetaSetMut("o365_content_type", "Audit.SharePoint")
		out, err := msg.BloblangQuery(exe)
		require.NoError(t, err)
		b, err := out.AsBytes()
		require.NoError(t, err)
		assert.Equal(t, rec, string(b), "byte-for-byte")
	})
}

func TestParseClientIP(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]any
	}{
		{"1.2.3.4", map[string]any{"ip": "1.2.3.4"}},
		{"1.2.3.4:12345", map[string]any{"ip": "1.2.3.4", "port": int64(12345)}},
		{"[1.2.3.4]:12345", map[string]any{"ip": "1.2.3.4", "port": int64(12345)}},
		{"[1.2.3.4]", map[string]any{"ip": "1.2.3.4"}},
		{"2001:db8::abcd", map[string]any{"ip": "2001:db8::abcd"}},
		{"2001:DB8::ABCD", map[string]any{"ip": "2001:db8::abcd"}},
		{"[2001:db8::abcd]:12345", map[string]any{"ip": "2001:db8::abcd", "port": int64(12345)}},
		{"[2001:db8::abcd]", map[string]any{"ip": "2001:db8::abcd"}},
		{"::ffff:1.2.3.4", map[string]any{"ip": "::ffff:1.2.3.4"}},
		{"[::ffff:1.2.3.4]:12345", map[string]any{"ip": "::ffff:1.2.3.4", "port": int64(12345)}},
		{"localhost:12345", map[string]any{"address": "localhost", "port": int64(12345)}},
		{"ffff:10.11.0.229", map[string]any{"address": "ffff:10.11.0.229"}},
		{" 1.2.3.4 ", map[string]any{"ip": "1.2.3.4"}},
		{"1.2.3.4:0", map[string]any{"ip": "1.2.3.4", "port": int64(0)}},
		{"1.2.3.4:65536", map[string]any{"address": "1.2.3.4:65536"}},
		{"1.2.3.4:", map[string]any{"address": "1.2.3.4:"}},
		{":80", map[string]any{"address": ":80"}},
		{"256.1.1.1", map[string]any{"address": "256.1.1.1"}},
		{"[2001:db8::1", map[string]any{"address": "[2001:db8::1"}},
		{"[2001:db8::1]:x", map[string]any{"address": "[2001:db8::1]:x"}},
		{"[]", map[string]any{"address": ""}},
		{"", nil},
		{"   ", nil},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := parseClientIP(tc.in)
			if tc.want == nil {
				assert.Nil(t, got)
				return
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestRecordTypeTable checks the table in normalize.blobl, which was generated from the
// RecordType list in the project's API notes (management-api.md §8.3, 257 values): its size,
// both ends, and the renamed values whose names are easy to get wrong.
func TestRecordTypeTable(t *testing.T) {
	table := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+"(-?\d+)": "([^"]+)",?$`).FindAllStringSubmatch(NormalizeMapping, -1) {
		table[m[1]] = m[2]
	}
	assert.Len(t, table, 257, "management-api.md §8.3 lists 257 values")
	assert.Equal(t, "ExchangeAdmin", table["1"])
	assert.Equal(t, "AzureActiveDirectoryStsLogon", table["15"])
	assert.Equal(t, "Viva Engage", table["22"], "22 was Yammer")
	assert.Equal(t, "VivaInsights", table["44"], "44 was WorkplaceAnalytics")
	assert.Equal(t, "Viva Goals", table["216"])
	assert.Equal(t, "CopilotInteraction", table["261"])
	assert.Equal(t, "VivaGlintAgenticCampaign", table["463"])
	for _, gone := range []string{"5", "12", "26", "27", "117"} {
		assert.NotContains(t, table, gone, "RecordType %s has no name in the current docs", gone)
	}
}
