package input

import (
	"errors"

	"github.com/o365connect/o365connect/input/o365api"
)

// observeRequest counts every API exchange and logs the throttling state
// changes once each: throttled (with the wait, when the service sends one)
// and resumed. The client retries throttled requests itself, so without
// this a throttled tenant would only show in the metrics.
func (in *office365ActivityInput) observeRequest(ev o365api.RequestEvent) {
	in.metrics.request(ev)
	if offset, changed := in.clock.observe(ev.ServerDate, in.now()); changed {
		if offset == 0 {
			in.log.Infof("The local clock agrees with the Activity API's again")
		} else {
			in.log.Warnf("The local clock differs from the Activity API's by %v (API minus local); listing windows follow the API's clock", offset)
		}
	}
	throttled := ev.Code == "AF429" || ev.Status == 429
	succeeded := ev.Status >= 200 && ev.Status < 300
	in.throttleMu.Lock()
	was := in.throttled
	in.throttled = throttled || (was && !succeeded)
	in.throttleMu.Unlock()
	switch {
	case throttled && !was:
		wait := "backing off exponentially"
		var apiErr *o365api.APIError
		if errors.As(ev.Err, &apiErr) && apiErr.RetryAfter > 0 {
			wait = "waiting " + apiErr.RetryAfter.String() + " (Retry-After)"
		}
		in.log.Warnf("Throttled by the Activity API (%s on %s), %s; lower max_requests_per_minute if this repeats", ev.Code, ev.Op, wait)
	case was && succeeded:
		in.log.Infof("Requests to the Activity API resumed after throttling")
	}
}
