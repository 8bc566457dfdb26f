package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/o365connect/o365connect/input"
	"github.com/o365connect/o365connect/input/o365api"
)

// SubscriptionAction is what the subscriptions command does.
type SubscriptionAction string

// Subscription actions.
const (
	ActionList  SubscriptionAction = "list"
	ActionStart SubscriptionAction = "start"
	ActionStop  SubscriptionAction = "stop"
)

// SubscriptionRow is one content type's line of the subscriptions command.
type SubscriptionRow struct {
	TenantID    string `json:"tenant_id"`
	ContentType string `json:"content_type"`
	Status      string `json:"status"`           // enabled, disabled or not started, after the action
	Result      string `json:"result,omitempty"` // what the action did, e.g. "started", "already enabled"
	Error       string `json:"error,omitempty"`
	Fix         string `json:"fix,omitempty"`
}

// ManageSubscriptions lists, starts or stops the subscriptions of
// contentTypes (the configured ones when empty) with the input's
// credentials. A start of an enabled subscription is success ("already
// enabled"). It returns one row per content type; a failure of one content
// type is in its row, and the error is only for failures of the whole
// command (no token, no listing).
func ManageSubscriptions(ctx context.Context, settings input.Settings, action SubscriptionAction, contentTypes []string) ([]SubscriptionRow, error) {
	if len(contentTypes) == 0 {
		contentTypes = settings.ContentTypes()
	}
	for _, ct := range contentTypes {
		if !o365api.IsContentType(ct) {
			return nil, fmt.Errorf("--content-type %q is not one of %s", ct, strings.Join(o365api.AllContentTypes, ", "))
		}
	}
	client, _, err := settings.NewClient(nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	states, err := subscriptionStates(ctx, client, contentTypes)
	if err != nil {
		return nil, fmt.Errorf("listing subscriptions: %w", subscriptionError(err, settings))
	}
	rows := make([]SubscriptionRow, 0, len(contentTypes))
	for _, ct := range contentTypes {
		row := SubscriptionRow{TenantID: settings.TenantID(), ContentType: ct, Status: states[ct]}
		switch action {
		case ActionStart:
			if states[ct] == subEnabled {
				row.Result = "already enabled"
			} else if _, err := client.StartSubscription(ctx, ct); err != nil {
				row.Result, row.Error, row.Fix = "failed", err.Error(), fixOf(err)
			} else {
				row.Status, row.Result = subEnabled, "started (content can take up to 12 hours to appear)"
			}
		case ActionStop:
			if states[ct] != subEnabled {
				row.Result = "not enabled, nothing to stop"
			} else if err := client.StopSubscription(ctx, ct); err != nil {
				row.Result, row.Error, row.Fix = "failed", err.Error(), fixOf(err)
			} else {
				row.Status, row.Result = subDisabled, "stopped (content of the stopped period stays unreachable)"
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// subscriptionError adds the fix to a failure of the whole command.
func subscriptionError(err error, settings input.Settings) error {
	if strings.Contains(err.Error(), "getting an access token") {
		_, fix := explainTokenError(err, settings)
		return fmt.Errorf("%w; fix: %s", err, fix)
	}
	if fix := fixOf(err); fix != "" {
		return fmt.Errorf("%w; fix: %s", err, fix)
	}
	return err
}

func fixOf(err error) string {
	_, fix := explainAPIError(err)
	return fix
}

// SubscriptionsFailed reports whether any row failed.
func SubscriptionsFailed(rows []SubscriptionRow) bool {
	for _, r := range rows {
		if r.Error != "" {
			return true
		}
	}
	return false
}

// WriteSubscriptionsTable prints rows as an aligned table.
func WriteSubscriptionsTable(w io.Writer, rows []SubscriptionRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTENT TYPE\tSTATUS\tRESULT")
	for _, r := range rows {
		result := r.Result
		if r.Error != "" {
			result += ": " + r.Error
			if r.Fix != "" {
				result += " (fix: " + r.Fix + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ContentType, r.Status, result)
	}
	return tw.Flush()
}

// WriteSubscriptionsJSON prints rows as one JSON array, for scripts.
func WriteSubscriptionsJSON(w io.Writer, rows []SubscriptionRow) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}
