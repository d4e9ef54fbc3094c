# pulpgo: a Pulp-compatible container registry with pull-through caching.
GO      ?= go
BIN     := bin/pulpgo
OAPI    := $(GO) run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen

.PHONY: build run test test-faults test-fuzz test-parity generate lint bench-tasks bench-pull bench-farm bench-cold bench-sync bench-push clean

build: ## Build bin/pulpgo.
	$(GO) build -o $(BIN) ./cmd/pulpgo

run: build ## Run API, content app and worker on :24817 with embedded defaults (./data).
	./$(BIN) serve

test: ## Run every test against embedded defaults and throwaway PostgreSQL + Redis.
	bash scripts/test.sh

test-faults: build ## The outage suite alone (test/faults, which starts its own PostgreSQL and Redis; the storage-full cases need root). PULPGO_FAULTS_MATRIX=FILE collects its matrix lines.
	$(GO) test -count=1 -timeout 15m -v ./test/faults

test-fuzz: ## Run each go test -fuzz target for FUZZTIME (default 60s; scripts/fuzz.sh).
	bash scripts/fuzz.sh

test-parity: ## Differential test against the real Pulp (test/parity; installs it into a cached venv once).
	PULPGO_PARITY=1 $(GO) test -count=1 -timeout 20m -v -run TestParity ./test/parity

generate: ## Regenerate gen/ from openapi/pulp.yaml.
	$(OAPI) -config openapi/codegen.yaml openapi/pulp.yaml

lint:
	gofmt -l $$(git ls-files '*.go') ; $(GO) vet ./...

bench-tasks: build ## Task round trip and list throughput (scripts/bench-tasks.sh).
	bash scripts/bench-tasks.sh

bench-pull: build ## Pull-through benchmark against a local upstream (scripts/bench-pull.sh).
	bash scripts/bench-pull.sh

bench-farm: build ## CI farm through the cache under a Docker Hub pull budget, beside Distribution (bench-pull.sh farm).
	bash scripts/bench-pull.sh farm

bench-cold: ## Cold pulls only, direct vs pulpgo, with the server CPU of each (scripts/bench-cold.sh).
	bash scripts/bench-cold.sh

bench-sync: build ## Repository sync benchmark against a local upstream and skopeo sync (scripts/bench-sync.sh).
	bash scripts/bench-sync.sh

bench-push: build ## Push benchmark beside Distribution v3 (scripts/bench-push.sh).
	bash scripts/bench-push.sh

clean:
	rm -rf bin
