# o365connect: `make run` runs the main job on an embedded default, `make test` runs every test.
SHELL := /bin/bash
export GOTOOLCHAIN := local

BIN      := bin/o365connect
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DATE     := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -X main.Version=$(VERSION) -X main.DateBuilt=$(DATE)
GO_FILES := $(shell git ls-files '*.go' 2>/dev/null)

# Placeholders so that lint checks the configs' shape, not this shell's variables.
LINT_ENV := O365_TENANT_ID=00000000-0000-0000-0000-000000000000 O365_CLIENT_ID=00000000-0000-0000-0000-000000000000 \
	O365_CLIENT_SECRET=lint O365_OUT_DIR=out O365_STATE_DIR=state KAFKA_BROKERS=127.0.0.1:9092

.PHONY: build run test test-static test-unit test-yaml test-fuzz fuzz test-integration bench bench-smoke kafka-start kafka-stop clean

build:
	go build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/o365connect

## run: the production pipeline shape against a simulated tenant (no credentials needed)
run: build
	./$(BIN) demo

## test: static checks, unit tests (-race), YAML tests, then integration tests on a real Kafka broker
test: test-static test-unit test-yaml test-fuzz test-integration bench-smoke

test-static:
	@unformatted=$$(gofmt -l $(GO_FILES)); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags integration ./...
	@# Redpanda Connect links Redpanda Community Licence code (foundations.md): never in our binary.
	@if go list -deps ./cmd/o365connect | grep '^github.com/redpanda-data/connect'; then \
		echo "the packages above are Redpanda Connect's and must not be linked"; exit 1; fi

test-unit:
	go test -race -count=1 ./...

test-yaml: build
	./$(BIN) test ./resources/... ./processor/...
	$(LINT_ENV) ./$(BIN) lint --deprecated ./config/*.yaml

# Fuzz targets as Name:./package; their seed corpora are in each package's testdata/fuzz.
FUZZ_TARGETS := FuzzRecordDecoder:./input/o365api FuzzParseTime:./input/o365api FuzzNextPageURL:./input/o365api \
	FuzzParseErrorBody:./input/o365api FuzzParseClientIP:./resources FuzzRouteTopic:./processor
FUZZTIME ?= 60s

## test-fuzz: every fuzz target briefly (a crash it finds is written to testdata/fuzz: commit it as a regression test)
test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "go test -run=^$$ -fuzz=^$${t%%:*}\$$ -fuzztime=3s $${t#*:}"; \
		go test -run='^$$' -fuzz="^$${t%%:*}\$$" -fuzztime=3s "$${t#*:}"; \
	done

## fuzz: every fuzz target for FUZZTIME each
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		go test -run='^$$' -fuzz="^$${t%%:*}\$$" -fuzztime=$(FUZZTIME) "$${t#*:}"; \
	done

# The broker is stopped whatever the tests' outcome; its failure to start fails the target.
test-integration: build
	@set -euo pipefail; \
	scripts/kafka/broker.sh start; \
	trap 'scripts/kafka/broker.sh stop' EXIT; \
	eval "$$(scripts/kafka/broker.sh env)"; \
	go test -race -count=1 -p 1 -tags integration -timeout 25m -run Integration ./...

## bench: drain a simulated 7-day backlog (1M records + a 64 MB blob) into a real broker of its own,
## raw and with normalize.blobl, BENCH_RUNS times each; writes bench/results/<date>.md (bench/README.md)
BENCH_RUNS            ?= 3
BENCH_ARGS            ?=
BENCH_KAFKA_JAVA_OPTS ?= -Xms1g -Xmx1g -XX:+UseParallelGC
# A broker of its own on other ports and state, so the bench never shares one with test-integration.
bench_broker = KAFKA_PORT=$(1) KAFKA_CONTROLLER_PORT=$$(($(1)+1)) KAFKA_SASL_PORT=$$(($(1)+2)) \
	KAFKA_STATE_DIR=$(CURDIR)/.cache/kafka/bench-$(1)

bench: build
	@set -euo pipefail; \
	export $(call bench_broker,19192) KAFKA_JAVA_OPTS='$(BENCH_KAFKA_JAVA_OPTS)'; \
	scripts/kafka/broker.sh start; \
	trap 'scripts/kafka/broker.sh clean' EXIT; \
	BENCH_RUNS=$(BENCH_RUNS) ./$(BIN) bench --brokers 127.0.0.1:$$KAFKA_PORT \
		--broker-pid-file $$KAFKA_STATE_DIR/broker.pid $(BENCH_ARGS)

## bench-smoke: the bench command on 20k records, one run, no targets: it must complete and write its table
bench-smoke: build
	@set -euo pipefail; \
	export $(call bench_broker,19292); \
	scripts/kafka/broker.sh start; \
	trap 'scripts/kafka/broker.sh clean' EXIT; \
	./$(BIN) bench --brokers 127.0.0.1:$$KAFKA_PORT --broker-pid-file $$KAFKA_STATE_DIR/broker.pid \
		--records 20000 --huge-records 2000 --records-per-blob 500 --runs 1 \
		--live-blobs 3 --live-records 50 --live-interval 1s --poll-interval 2s \
		--title "o365connect bench smoke run" --out tmp/bench-smoke; \
	test -s tmp/bench-smoke/$$(date -u +%Y-%m-%d).md

kafka-start:
	scripts/kafka/broker.sh start

kafka-stop:
	scripts/kafka/broker.sh stop

clean:
	rm -rf bin out tmp
