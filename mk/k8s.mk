# Kubernetes manifests (deploy/k8s): render the overlays, validate them offline, test them.
# Included by the root Makefile, which defines VENV and PYTHON; works alone too:
#   make -f mk/k8s.mk k8s-validate [PYTHON=path/to/python]
# Needs kubectl (built-in kustomize) and, in $(PYTHON), kubernetes-validate, pyyaml and pytest.

VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
KUBECTL ?= kubectl
K8S_OVERLAYS ?= dev prod
K8S_BUILD_DIR ?= build/k8s
# The Kubernetes version whose schemas the built-in objects are checked against (offline, from
# the schemas the kubernetes-validate package ships). Oldest version we support: 1.32 (preStop
# `sleep`, matchLabelKeys, unhealthyPodEvictionPolicy all need >= 1.30/1.31).
K8S_SCHEMA_VERSION ?= 1.32.0

.PHONY: k8s-render k8s-schema k8s-validate k8s-test

k8s-render: ## render each deploy/k8s overlay into build/k8s/<env>.yaml
	@command -v $(KUBECTL) >/dev/null || { echo "k8s-render: $(KUBECTL) not found"; exit 1; }
	@mkdir -p $(K8S_BUILD_DIR)
	@set -e; for env in $(K8S_OVERLAYS); do \
	  $(KUBECTL) kustomize deploy/k8s/overlays/$$env > $(K8S_BUILD_DIR)/$$env.yaml; \
	  echo "rendered deploy/k8s/overlays/$$env -> $(K8S_BUILD_DIR)/$$env.yaml"; \
	done

# k8s-validate: render, check built-in objects strictly against the Kubernetes schemas, run tests/k8s.
# Custom resources (RabbitmqCluster, CNPG Cluster, ServiceMonitor, ...) have no schema in
# kubernetes-validate: tests/k8s/manifests.py splits them off by an explicit allow-list (any other
# unknown kind fails). A WARN from kubernetes-validate (e.g. no schema for a built-in kind under a
# wrong apiVersion) fails the target too, as does any ERROR.
k8s-validate: k8s-schema k8s-test ## render + offline schema validation (strict) + tests/k8s

k8s-schema: k8s-render ## render + offline schema validation (strict) of every overlay
	@set -e; for env in $(K8S_OVERLAYS); do \
	  $(PYTHON) tests/k8s/manifests.py $(K8S_BUILD_DIR)/$$env.yaml; \
	  out=$$($(PYTHON) -m kubernetes_validate --strict --quiet -k $(K8S_SCHEMA_VERSION) \
	    $(K8S_BUILD_DIR)/$$env.builtin.yaml 2>&1) && rc=0 || rc=$$?; \
	  if [ -n "$$out" ]; then echo "$$out"; fi; \
	  if [ $$rc -ne 0 ] || echo "$$out" | grep -qE '^(WARN|ERROR|FATAL)'; then \
	    echo "k8s-validate: $$env does not validate against Kubernetes $(K8S_SCHEMA_VERSION) (strict)"; exit 1; \
	  fi; \
	  echo "$$env: built-in objects valid against Kubernetes $(K8S_SCHEMA_VERSION) schemas (--strict)"; \
	done

k8s-test: ## the deploy/k8s manifest tests alone (they render the overlays themselves)
	$(PYTHON) tools/run_tests.py tests/k8s
