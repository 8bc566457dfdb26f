package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// parseConfig parses yaml with the output's spec and validates it like the registered constructor.
func parseConfig(yaml string) (*franzConfig, error) {
	pConf, err := franzOutputSpec().ParseYAML(yaml, nil)
	if err != nil {
		return nil, err
	}
	return franzConfigFromParsed(pConf)
}

// newOutput builds an output from yaml without connecting it; Close runs at cleanup.
func newOutput(t testing.TB, yaml string) *franzOutput {
	t.Helper()
	cfg, err := parseConfig(yaml)
	require.NoError(t, err)
	out := newFranzOutput(cfg, service.MockResources().Logger())
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	return out
}

// connectedOutput is newOutput followed by a successful Connect.
func connectedOutput(t testing.TB, yaml string) *franzOutput {
	t.Helper()
	out := newOutput(t, yaml)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, out.Connect(ctx))
	return out
}

// testMessage is a message with the given body and metadata pairs (key, value, key, value, ...).
func testMessage(body string, meta ...string) *service.Message {
	m := service.NewMessage([]byte(body))
	for i := 0; i+1 < len(meta); i += 2 {
		m.MetaSetMut(meta[i], meta[i+1])
	}
	return m
}

// consumeN reads exactly n records from the start of topics, failing the test if fewer arrive
// before the deadline. A short grace period after the n-th record catches extra records.
func consumeN(t testing.TB, brokers []string, n int, topics []string, extra ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	var grace <-chan time.Time
	for {
		pollCtx := ctx
		var pollCancel context.CancelFunc = func() {}
		if len(recs) >= n {
			if grace == nil {
				grace = time.After(200 * time.Millisecond)
			}
			pollCtx, pollCancel = context.WithTimeout(ctx, 200*time.Millisecond)
		}
		fetches := cl.PollFetches(pollCtx)
		pollCancel()
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if len(recs) >= n && grace != nil {
			select {
			case <-grace:
				require.Len(t, recs, n, "consumed more records than produced")
				return recs
			default:
			}
		}
		if ctx.Err() != nil {
			require.Len(t, recs, n, "consumed fewer records than produced before the deadline")
			return recs
		}
		for _, fe := range fetches.Errors() {
			if ctx.Err() == nil && pollCtx.Err() == nil {
				t.Logf("fetch error on %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
	}
}

// adminFor returns an admin client for brokers, closed at cleanup.
func adminFor(t testing.TB, brokers []string, mechs ...sasl.Mechanism) *kadm.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if len(mechs) > 0 {
		opts = append(opts, kgo.SASL(mechs...))
	}
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func quoteList(ss []string) string {
	return "[" + strings.Join(ss, ", ") + "]"
}
