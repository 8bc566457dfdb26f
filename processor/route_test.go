package processor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestRouter(t testing.TB, yaml string) *router {
	t.Helper()
	conf, err := routeSpec().ParseYAML(yaml, nil)
	require.NoError(t, err)
	cfg, err := routeConfigFromParsed(conf)
	require.NoError(t, err)
	return newRouter(cfg)
}

func TestRouteConfig(t *testing.T) {
	tests := []struct {
		name        string
		yaml        string
		errContains []string
	}{
		{name: "defaults", yaml: `{}`},
		{name: "empty prefix", yaml: `topic_prefix: ""`},
		{name: "good overrides", yaml: `topics: {Exchange: ex, "Dynamics 365": o365.dyn}`},
		{name: "bad prefix", yaml: `topic_prefix: "o365/"`, errContains: []string{"topic_prefix", `"o365/"`, `"/"`}},
		{name: "long prefix", yaml: `topic_prefix: "` + strings.Repeat("p", 240) + `"`, errContains: []string{"topic_prefix", "240"}},
		{name: "bad fallback", yaml: `fallback_topic: "no way"`, errContains: []string{"fallback_topic", `"no way"`, `' '`}},
		{name: "dot fallback", yaml: `fallback_topic: ".."`, errContains: []string{"fallback_topic", `".."`}},
		{name: "empty fallback", yaml: `fallback_topic: ""`, errContains: []string{"fallback_topic", "empty"}},
		{name: "bad override", yaml: `topics: {Exchange: ok, MicrosoftTeams: "teams!"}`, errContains: []string{"topics.MicrosoftTeams", `"teams!"`}},
		{name: "long override", yaml: `topics: {Exchange: "` + strings.Repeat("t", 250) + `"}`, errContains: []string{"topics.Exchange", "250"}},
		{name: "unicode override", yaml: `topics: {Exchange: "échange"}`, errContains: []string{"topics.Exchange", `'é'`}},
		{name: "case duplicate", yaml: `topics: {Exchange: a, EXCHANGE: b}`, errContains: []string{"topics", `"EXCHANGE"`, `"Exchange"`}},
		{name: "empty key", yaml: `topics: {" ": a}`, errContains: []string{"topics", "empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := routeSpec().ParseYAML(tc.yaml, nil)
			require.NoError(t, err)
			_, err = routeConfigFromParsed(conf)
			if len(tc.errContains) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, s := range tc.errContains {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestRoute(t *testing.T) {
	long := strings.Repeat("VeryLongWorkload", 20) // 320 characters
	r := newTestRouter(t, `
topics:
  azureactivedirectory: o365.entra
  "DYNAMICS 365": o365.dynamics
`)
	tests := []struct {
		name         string
		meta         map[string]string
		content      string
		wantTopic    string
		wantWorkload string // "" means the key must be absent
	}{
		{name: "exchange", meta: map[string]string{"o365_workload": "Exchange"}, content: `{}`, wantTopic: "o365.exchange", wantWorkload: "Exchange"},
		{name: "teams", meta: map[string]string{"o365_workload": "MicrosoftTeams"}, content: `{}`, wantTopic: "o365.microsoftteams", wantWorkload: "MicrosoftTeams"},
		{name: "space", meta: map[string]string{"o365_workload": "Power BI"}, content: `{}`, wantTopic: "o365.power_bi", wantWorkload: "Power BI"},
		{name: "padded", meta: map[string]string{"o365_workload": " SharePoint "}, content: `{}`, wantTopic: "o365.sharepoint", wantWorkload: " SharePoint "},
		{name: "unicode", meta: map[string]string{"o365_workload": "Ünïcode/Ωork"}, content: `{}`, wantTopic: "o365._n_code__ork", wantWorkload: "Ünïcode/Ωork"},
		{name: "dots and dashes kept", meta: map[string]string{"o365_workload": "a.b-c_d"}, content: `{}`, wantTopic: "o365.a.b-c_d", wantWorkload: "a.b-c_d"},
		{name: "override odd casing", meta: map[string]string{"o365_workload": "AzureActiveDirectory"}, content: `{}`, wantTopic: "o365.entra", wantWorkload: "AzureActiveDirectory"},
		{name: "override key with space", meta: map[string]string{"o365_workload": "dynamics 365"}, content: `{}`, wantTopic: "o365.dynamics", wantWorkload: "dynamics 365"},
		{name: "metadata wins over record", meta: map[string]string{"o365_workload": "OneDrive"}, content: `{"Workload":"SharePoint"}`, wantTopic: "o365.onedrive", wantWorkload: "OneDrive"},
		{name: "metadata absent", content: `{"Id":"1","Workload":"Exchange","RecordType":2}`, wantTopic: "o365.exchange", wantWorkload: "Exchange"},
		{name: "metadata empty", meta: map[string]string{"o365_workload": ""}, content: `{"Workload":"OneDrive"}`, wantTopic: "o365.onedrive", wantWorkload: "OneDrive"},
		{name: "lower-case field name", content: `{"workload":"Yammer"}`, wantTopic: "o365.yammer", wantWorkload: "Yammer"},
		{name: "record override", content: `{"Workload":"Dynamics 365"}`, wantTopic: "o365.dynamics", wantWorkload: "Dynamics 365"},
		{name: "no workload", content: `{"Id":"1"}`, wantTopic: "o365.unknown"},
		{name: "null workload", content: `{"Workload":null}`, wantTopic: "o365.unknown"},
		{name: "numeric workload", content: `{"Workload":7}`, wantTopic: "o365.unknown"},
		{name: "blank workload", content: `{"Workload":"  "}`, wantTopic: "o365.unknown"},
		{name: "bad json", content: `{"Workload":"Exchange"`, wantTopic: "o365.unknown"},
		{name: "not an object", content: `["Exchange"]`, wantTopic: "o365.unknown"},
		{name: "empty content", content: ``, wantTopic: "o365.unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := service.NewMessage([]byte(tc.content))
			for k, v := range tc.meta {
				msg.MetaSetMut(k, v)
			}
			out, err := r.Process(t.Context(), msg)
			require.NoError(t, err)
			require.Len(t, out, 1)
			topic, ok := out[0].MetaGet("topic")
			require.True(t, ok)
			assert.Equal(t, tc.wantTopic, topic)
			assert.NoError(t, validateTopic(topic))
			w, ok := out[0].MetaGet("o365_workload")
			if tc.wantWorkload == "" {
				assert.False(t, ok || w != "", "o365_workload should stay unset, got %q", w)
			} else {
				assert.Equal(t, tc.wantWorkload, w)
			}
			b, err := out[0].AsBytes()
			require.NoError(t, err)
			assert.Equal(t, tc.content, string(b), "content must not change")
		})
	}

	t.Run("very long", func(t *testing.T) {
		a := defaultTopic("o365.", strings.ToLower(long))
		b := defaultTopic("o365.", strings.ToLower(long+"x"))
		assert.Len(t, a, kafkaMaxTopicLen)
		assert.Len(t, b, kafkaMaxTopicLen)
		assert.NotEqual(t, a, b, "cut names must still differ")
		assert.True(t, strings.HasPrefix(a, "o365.verylongworkload"))
		assert.NoError(t, validateTopic(a))
	})
	t.Run("very long unicode", func(t *testing.T) {
		a := defaultTopic("", strings.Repeat("é", 300))
		assert.Len(t, a, kafkaMaxTopicLen)
		assert.NoError(t, validateTopic(a))
	})
	t.Run("dot names", func(t *testing.T) {
		assert.Equal(t, "_", defaultTopic("", "."))
		assert.Equal(t, "__", defaultTopic("", ".."))
		assert.Equal(t, "...", defaultTopic("", "..."), "three dots are a valid Kafka name")
	})
}

func TestRouteCacheIsBounded(t *testing.T) {
	r := newTestRouter(t, `{}`)
	for i := range rtMaxCachedTopics + 10 {
		_ = r.topicFor(fmt.Sprintf("W%d", i))
	}
	assert.Len(t, r.cache, rtMaxCachedTopics)
	assert.Equal(t, "o365.w1", r.topicFor("W1"))
	assert.Equal(t, "o365.w1030", r.topicFor("W1030"), "uncached workloads still route")
}

func BenchmarkRoute(b *testing.B) {
	r := newTestRouter(b, `topics: {AzureActiveDirectory: o365.entra}`)
	content := []byte(`{"CreationTime":"2015-06-29T20:03:19","Id":"80c76bd2-9d81-4c57-a97a-accfc3443dca","Operation":"PasswordLogonInitialAuthUsingPassword","OrganizationId":"41463f53-8812-40f4-890f-865bf6e35190","RecordType":15,"ResultStatus":"Succeeded","UserKey":"1153977025279851686@contoso.onmicrosoft.com","UserType":0,"Workload":"AzureActiveDirectory","ClientIP":"134.170.188.221","ObjectId":"797f4846-ba00-4fd7-ba43-dac1f8f63013","UserId":"admin@contoso.onmicrosoft.com"}`)
	workloads := []string{"Exchange", "SharePoint", "AzureActiveDirectory", "MicrosoftTeams"}

	b.Run("metadata", func(b *testing.B) {
		msgs := make([]*service.Message, len(workloads))
		for i, w := range workloads {
			msgs[i] = service.NewMessage(content)
			msgs[i].MetaSetMut("o365_workload", w)
		}
		ctx := b.Context()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := r.Process(ctx, msgs[i%len(msgs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("record", func(b *testing.B) {
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			msg := service.NewMessage(content)
			if _, err := r.Process(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
