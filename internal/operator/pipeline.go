// Package operator holds the commands an operator runs against a pipeline
// config besides `run`: `check` (can this pipeline work?) and
// `subscriptions` (list, start, stop).
package operator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	"github.com/o365connect/o365connect/input"
	"github.com/o365connect/o365connect/output/kafka"
)

// Component names looked for in a pipeline.
const (
	inputName  = "office365_activity"
	outputName = "kafka_franz"
)

// Pipeline is what the operator commands need from a pipeline config.
type Pipeline struct {
	Inputs []FoundInput
	Kafka  []FoundKafkaOutput
}

// FoundInput is one office365_activity input and where it sits in the config.
type FoundInput struct {
	Path     string // e.g. "input" or "input.broker.inputs.1"
	Settings input.Settings
}

// FoundKafkaOutput is one kafka_franz output and where it sits in the config.
type FoundKafkaOutput struct {
	Path     string
	Settings kafka.Settings
}

// LoadPipeline reads a pipeline config file the way `o365connect run` does:
// environment variables interpolated with lookupEnv (os.LookupEnv when nil),
// the whole config linted, then every office365_activity input (also inside
// broker/sequence inputs) and kafka_franz output (also inside
// broker/switch/fallback/retry outputs) parsed through its own spec.
func LoadPipeline(path string, lookupEnv func(string) (string, bool)) (Pipeline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Pipeline{}, fmt.Errorf("reading config: %w", err)
	}
	return ParsePipelineYAML(raw, lookupEnv)
}

// ParsePipelineYAML is LoadPipeline on the config's bytes.
func ParsePipelineYAML(raw []byte, lookupEnv func(string) (string, bool)) (Pipeline, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	envFn := func(_ context.Context, name string) (string, bool) { return lookupEnv(name) }
	schema := service.GlobalEnvironment().FullConfigSchema("", "")

	// `run` refuses a config with lint errors (a missing environment
	// variable among them), so check does too.
	lints, err := schema.NewStreamConfigLinter().SetEnvVarLookupFunc(envFn).LintYAML(raw)
	if err != nil {
		return Pipeline{}, fmt.Errorf("parsing config: %w", err)
	}
	if len(lints) > 0 {
		msgs := make([]string, len(lints))
		for i, l := range lints {
			msgs[i] = l.Error()
		}
		return Pipeline{}, fmt.Errorf("config has lint errors: %s", strings.Join(msgs, "; "))
	}

	querier := schema.NewConfigQuerier()
	querier.SetEnvVarLookupFunc(envFn)
	file, err := querier.ParseYAML(string(raw))
	if err != nil {
		return Pipeline{}, fmt.Errorf("parsing config: %w", err)
	}
	var p Pipeline
	for _, section := range []string{"input", "output"} {
		parsed, err := file.FieldAtPath(section)
		if err != nil {
			continue // a config without an output is linted above already
		}
		v, err := parsed.FieldAny()
		if err != nil {
			return Pipeline{}, fmt.Errorf("reading %s: %w", section, err)
		}
		node, ok := v.(*yaml.Node)
		if !ok {
			return Pipeline{}, fmt.Errorf("reading %s: unexpected %T", section, v)
		}
		if err := p.collect(section, node); err != nil {
			return Pipeline{}, err
		}
	}
	if len(p.Inputs) == 0 {
		return Pipeline{}, errors.New("config has no office365_activity input (looked in input, broker.inputs and sequence.inputs)")
	}
	return p, nil
}

// collect walks one component and the components nested in it.
func (p *Pipeline) collect(path string, component *yaml.Node) error {
	if component.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(component.Content); i += 2 {
		key, value := component.Content[i].Value, component.Content[i+1]
		switch key {
		case inputName:
			fields, err := fieldsYAML(value)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", path, key, err)
			}
			settings, err := input.ParseInputYAML(fields)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", path, key, err)
			}
			p.Inputs = append(p.Inputs, FoundInput{Path: path, Settings: settings})
		case outputName:
			fields, err := fieldsYAML(value)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", path, key, err)
			}
			settings, err := kafka.ParseOutputYAML(fields)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", path, key, err)
			}
			p.Kafka = append(p.Kafka, FoundKafkaOutput{Path: path, Settings: settings})
		case "broker", "sequence":
			if err := p.collectList(path+"."+key+".inputs", mapValue(value, "inputs")); err != nil {
				return err
			}
			if err := p.collectList(path+"."+key+".outputs", mapValue(value, "outputs")); err != nil {
				return err
			}
		case "fallback":
			if err := p.collectList(path+".fallback", value); err != nil {
				return err
			}
		case "retry":
			if out := mapValue(value, "output"); out != nil {
				if err := p.collect(path+".retry.output", out); err != nil {
					return err
				}
			}
		case "switch":
			cases := mapValue(value, "cases")
			if cases == nil {
				continue
			}
			for j, c := range cases.Content {
				if out := mapValue(c, "output"); out != nil {
					if err := p.collect(path+".switch.cases."+strconv.Itoa(j)+".output", out); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// collectList walks each component of a list, whose path is listPath.
func (p *Pipeline) collectList(listPath string, list *yaml.Node) error {
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	for i, child := range list.Content {
		if err := p.collect(listPath+"."+strconv.Itoa(i), child); err != nil {
			return err
		}
	}
	return nil
}

// mapValue returns the value of key in a mapping node, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func fieldsYAML(n *yaml.Node) (string, error) {
	b, err := yaml.Marshal(n)
	if err != nil {
		return "", fmt.Errorf("re-encoding fields: %w", err)
	}
	return string(b), nil
}
