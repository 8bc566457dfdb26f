package input

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/o365connect/o365connect/input/o365api"
)

// restartCooldown is how long to wait between two starts of one content
// type's subscription: the API throttles subscriptions/start and asks callers
// to wait 15 minutes between starts (management-api.md §3.3).
const restartCooldown = 15 * time.Minute

// subscriptionRestartCooldown is restartCooldown, replaced by tests that
// disable and re-enable a subscription within seconds.
var subscriptionRestartCooldown = restartCooldown

// subscriptionKeeper starts subscriptions at Connect and restarts them when
// the API reports them missing or disabled mid-run (AF20022, AF20023).
type subscriptionKeeper struct {
	client   *o365api.Client
	mayStart bool
	log      *service.Logger
	now      func() time.Time
	cooldown time.Duration

	mu        sync.Mutex
	lastStart map[string]time.Time
}

func newSubscriptionKeeper(client *o365api.Client, mayStart bool, log *service.Logger, now func() time.Time) *subscriptionKeeper {
	return &subscriptionKeeper{client: client, mayStart: mayStart, log: log, now: now, cooldown: restartCooldown, lastStart: map[string]time.Time{}}
}

// ensure makes sure every content type has an enabled subscription, starting
// the missing ones when allowed and naming them when not.
func (s *subscriptionKeeper) ensure(ctx context.Context, contentTypes []string) error {
	subs, err := s.client.ListSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("listing subscriptions: %w", err)
	}
	enabled := map[string]bool{}
	for _, sub := range subs {
		enabled[sub.ContentType] = sub.Status == "enabled"
	}
	for _, ct := range contentTypes {
		if enabled[ct] {
			continue
		}
		if !s.mayStart {
			return fmt.Errorf("the subscription to %s is not enabled: set start_subscriptions: true, or start it once with `o365connect subscriptions start --content-type %s`", ct, ct)
		}
		if err := s.start(ctx, ct); err != nil {
			return err
		}
	}
	return nil
}

// handle reacts to a listing or fetch error: a missing or disabled
// subscription is started again, at most once per restartCooldown.
func (s *subscriptionKeeper) handle(ctx context.Context, contentType string, err error) {
	var apiErr *o365api.APIError
	if !errors.As(err, &apiErr) || apiErr.Action() != o365api.ActionResubscribe {
		return
	}
	if !s.mayStart {
		s.log.Errorf("The subscription to %s is missing or disabled (%s) and start_subscriptions is false: start it with `o365connect subscriptions start --content-type %s`", contentType, apiErr.Code, contentType)
		return
	}
	s.mu.Lock()
	last, started := s.lastStart[contentType]
	s.mu.Unlock()
	if started && s.now().Sub(last) < s.cooldown {
		return
	}
	if err := s.start(ctx, contentType); err != nil {
		s.log.Errorf("%v", err)
	}
}

func (s *subscriptionKeeper) start(ctx context.Context, contentType string) error {
	s.mu.Lock()
	s.lastStart[contentType] = s.now()
	s.mu.Unlock()
	if _, err := s.client.StartSubscription(ctx, contentType); err != nil {
		return fmt.Errorf("starting the subscription to %s: %w", contentType, err)
	}
	s.log.Infof("Started the subscription to %s; new subscriptions can take up to 12 hours to show content", contentType)
	return nil
}
