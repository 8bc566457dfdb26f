package operator

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check step.
type Status string

// Step outcomes. Only StatusOK and StatusWarn count as passing.
const (
	StatusOK Status = "ok"
	// StatusWarn passes, but names something that could not be verified or
	// will need attention.
	StatusWarn   Status = "warn"
	StatusFailed Status = "failed"
	// StatusSkipped did not run because a step it needs failed.
	StatusSkipped Status = "skipped"
)

// StepResult is one line of a check report.
type StepResult struct {
	Step   string `json:"step"`
	Status Status `json:"status"`
	Detail string `json:"detail"`          // what was found
	Cause  string `json:"cause,omitempty"` // on failure: why, in plain words
	Fix    string `json:"fix,omitempty"`   // on failure: what to do about it
}

// Passed reports whether every step is ok or warn.
func Passed(results []StepResult) bool {
	for _, r := range results {
		if r.Status != StatusOK && r.Status != StatusWarn {
			return false
		}
	}
	return len(results) > 0
}

// WriteReport prints one line per step, with the cause and the fix indented
// beneath a step that did not pass.
func WriteReport(w io.Writer, results []StepResult) error {
	width := 0
	for _, r := range results {
		width = max(width, len(r.Step))
	}
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%-7s  %-*s  %s\n", strings.ToUpper(string(r.Status)), width, r.Step, r.Detail)
		indent := strings.Repeat(" ", 9+width+2)
		if r.Cause != "" {
			fmt.Fprintf(&b, "%scause: %s\n", indent, r.Cause)
		}
		if r.Fix != "" {
			fmt.Fprintf(&b, "%sfix:   %s\n", indent, r.Fix)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteReportJSON prints the results as one JSON array, for scripts.
func WriteReportJSON(w io.Writer, results []StepResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}
