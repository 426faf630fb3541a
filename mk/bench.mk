# Benchmarks (bench/): the flash-sale path end to end, with plots. Included by the root Makefile,
# which defines VENV and PYTHON; works alone too: make -f mk/bench.mk bench [PYTHON=path/to/python]
# Results: bench/results/latest.json and PNG plots (git-ignored). See bench/README.md.
# Every parameter is a flag (BENCH_ARGS="--clients 5000 --duration 10") or an environment
# variable BENCH_<NAME> (BENCH_CLIENTS=5000). The load runs under `nice` (BENCH_NICE=0 to not).

VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
BENCH_ARGS ?=
BENCH_NICE ?= 10
BENCH_RUN = $(if $(filter-out 0,$(BENCH_NICE)),nice -n $(BENCH_NICE) )$(PYTHON)

.PHONY: bench bench-quick bench-floor bench-ceiling bench-full-path bench-storm bench-memory bench-hot-sku \
	bench-scale-out bench-conflation bench-profile

bench: install ## every benchmark at the issue's sizes (C=10,000; ~12 min): bench/results/latest.json + PNGs
	$(BENCH_RUN) -m bench $(BENCH_ARGS)

bench-quick: install ## every benchmark, small and short (smoke check, ~3 min)
	$(BENCH_RUN) -m bench --quick $(BENCH_ARGS)

bench-floor: install ## the bare broadcaster floor alone
	$(BENCH_RUN) -m bench.floor $(BENCH_ARGS)

bench-ceiling: install ## scenario 2: gateway fan-out ceiling (+ the 1,000 x 20/s latency point)
	$(BENCH_RUN) -m bench.fanout_ceiling $(BENCH_ARGS)

bench-full-path: install ## scenario 1: orders -> catalog -> push log -> gateway -> C viewers
	$(BENCH_RUN) -m bench.fanout_full $(BENCH_ARGS)

bench-storm: install ## scenario 3: connect storm (JWT connect + subscribe)
	$(BENCH_RUN) -m bench.connect_storm $(BENCH_ARGS)

bench-memory: install ## scenario 4: idle memory per connection
	$(BENCH_RUN) -m bench.idle_memory $(BENCH_ARGS)

bench-hot-sku: install ## scenario 5: hot SKU checkout through the saga
	$(BENCH_RUN) -m bench.hot_sku $(BENCH_ARGS)

bench-scale-out: install ## scenario 6: scenarios 1 and 3 with 1, 2, 3 gateways
	$(BENCH_RUN) -m bench.scale_out $(BENCH_ARGS)

bench-conflation: install ## conflation: deliveries per client per second under a 500/s storm
	$(BENCH_RUN) -m bench.conflation $(BENCH_ARGS)

bench-profile: install ## py-spy profile of a gateway under a scenario: make bench-profile SCENARIO=connect_storm
	$(BENCH_RUN) -m bench.profile $(or $(SCENARIO),fanout_ceiling) $(BENCH_ARGS)
