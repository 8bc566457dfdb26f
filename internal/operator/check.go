package operator

import (
	"context"
	"strings"
	"time"
)

// Check runs every step a pipeline needs, for each office365_activity input
// and each kafka_franz output of p, after a first "config" step that says
// what was found. With several inputs, step names carry the input's path.
func Check(ctx context.Context, p Pipeline, now time.Time) []StepResult {
	found := make([]string, 0, len(p.Inputs)+len(p.Kafka))
	for _, in := range p.Inputs {
		found = append(found, inputName+" at "+in.Path)
	}
	for _, out := range p.Kafka {
		found = append(found, outputName+" at "+out.Path)
	}
	results := []StepResult{{Step: "config", Status: StatusOK, Detail: strings.Join(found, ", ")}}
	for _, in := range p.Inputs {
		steps := CheckInput(ctx, in.Settings, now)
		if len(p.Inputs) > 1 {
			for i := range steps {
				steps[i].Step += " (" + in.Path + ")"
			}
		}
		results = append(results, steps...)
	}
	for _, out := range p.Kafka {
		results = append(results, CheckKafka(ctx, out)...)
	}
	return results
}

// ConfigFailure is the report of a config that could not be loaded.
func ConfigFailure(err error) []StepResult {
	return []StepResult{{Step: "config", Status: StatusFailed, Detail: "the pipeline config could not be used",
		Cause: err.Error(), Fix: "correct the config (o365connect lint CONFIG shows every problem) or set the environment variables it names"}}
}
