# Helm chart, raw manifests and the dev loop; the root Makefile includes this
# file (REPO_ROOT, RUN, deps) after hack/airgap/airgap.mk (tools, kind-*)
# and hack/image/image.mk (IMAGE, image).

##@ Chart and cluster

CHART := $(REPO_ROOT)/charts/storefront
BIN := $(REPO_ROOT)/bin
# Helm 4 (current: chart-test, deploy, e2e) and Helm 3 (still supported: the
# chart is linted, rendered, validated and unit-tested with it too).
HELM ?= $(BIN)/helm
HELM3 ?= $(BIN)/helm3
PROMTOOL ?= $(BIN)/promtool
HELM_DOCS ?= $(BIN)/helm-docs
# Gateway API CRD manifests (config/crd/standard of sigs.k8s.io/gateway-api);
# when absent, hack/chart/crd-schemas.sh takes them from the Go module.
GATEWAY_API_CRDS ?= $(wildcard $(BIN)/gateway-api-crds)
KUBECTL ?= $(BIN)/kubectl
KUBECONFORM ?= $(BIN)/kubeconform
SKAFFOLD ?= $(BIN)/skaffold
# Kubernetes version the rendered objects are validated against.
KUBE_VERSION ?= 1.34.0
RELEASE ?= storefront
NAMESPACE ?= storefront
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
CHART_SCENARIOS := default external-database gitops ha minimal
# Extra `helm upgrade` flags for deploy (e.g. -f my-values.yaml).
DEPLOY_FLAGS ?=
# The e2e release on a 2-core kind node: the control plane holds about half
# the CPU, and a rolling restart adds a pod.
E2E_DEPLOY_FLAGS ?= --set autoscaling.minReplicas=2 --set autoscaling.maxReplicas=3 \
	--set resources.requests.cpu=100m --set postgresql.resources.requests.cpu=50m \
	--set migrations.resources.requests.cpu=20m
# The bundled PostgreSQL/Redis images: the official ones, or (air-gapped,
# when the official ones are absent locally) those built from Debian packages.
AIRGAP_PG_IMAGE ?= storefront-airgap/postgres:15
AIRGAP_REDIS_IMAGE ?= storefront-airgap/redis:7
# Probed once per make run (the same idiom as IMAGE_TAG in image.mk).
USE_AIRGAP_IMAGES ?= $(eval USE_AIRGAP_IMAGES := $(shell $(DOCKER) image inspect postgres:17.6-bookworm >/dev/null 2>&1 || \
	($(DOCKER) image inspect $(AIRGAP_PG_IMAGE) >/dev/null 2>&1 && echo 1)))$(USE_AIRGAP_IMAGES)
DEPLOY_VALUES ?= $(if $(USE_AIRGAP_IMAGES),-f $(CHART)/values-airgap.yaml)
# checkov (PyPI) scans every scenario's render; pinned, in a private venv
# (not the project's lockfile). Accepted findings are skipped in the chart
# itself, one reason each (templates/_helpers.tpl, storefront.checkovSkips).
CHECKOV_VERSION ?= 3.3.30
CHECKOV := $(TOOLS_DIR)/checkov-$(CHECKOV_VERSION)/bin/checkov
CHART_TMP ?= $(REPO_ROOT)/.tools/chart-test

.PHONY: kube-schemas
kube-schemas:
	@bash $(REPO_ROOT)/hack/chart/kube-schemas.sh >/dev/null

.PHONY: chart-lint
chart-lint: tools ## helm lint --strict with every CI values file, with Helm 4 and Helm 3
	@for helm in $(HELM) $(HELM3); do \
		echo "$$($$helm version --template '{{.Version}}'): helm lint --strict ($(CHART_SCENARIOS) dev+airgap)"; \
		for scenario in $(CHART_SCENARIOS); do \
			$$helm lint --strict $(CHART) -f $(CHART)/ci/$$scenario-values.yaml >/dev/null || \
				{ $$helm lint --strict $(CHART) -f $(CHART)/ci/$$scenario-values.yaml; exit 1; }; \
		done; \
		$$helm lint --strict $(CHART) -f $(CHART)/values-dev.yaml -f $(CHART)/values-airgap.yaml >/dev/null || exit 1; \
	done

.PHONY: chart-kubeconform
chart-kubeconform: tools deps kube-schemas ## kubeconform -strict of every scenario (Kubernetes 1.34, Gateway API and Prometheus Operator CRDs), Helm 4 and 3
	@schemas="$$(bash $(REPO_ROOT)/hack/chart/kube-schemas.sh)"; \
	crds="$$(GATEWAY_API_CRDS='$(GATEWAY_API_CRDS)' PYTHON='$(RUN) python' bash $(REPO_ROOT)/hack/chart/crd-schemas.sh)"; \
	for helm in $(HELM) $(HELM3); do \
		version="$$($$helm version --template '{{.Version}}')"; \
		for scenario in $(CHART_SCENARIOS); do \
			printf '%s kubeconform -strict (%s): ' "$$version" "$$scenario"; \
			$$helm template $(RELEASE) $(CHART) --namespace $(NAMESPACE) -f $(CHART)/ci/$$scenario-values.yaml | \
			$(KUBECONFORM) -strict -summary -kubernetes-version $(KUBE_VERSION) \
				-schema-location "$$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
				-schema-location "$$crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" - || exit 1; \
		done; \
	done

.PHONY: chart-rules
chart-rules: tools deps ## promtool check rules + test rules on the chart's PrometheusRule (every alert fires and stays silent)
	@mkdir -p $(CHART_TMP)
	$(HELM) template shop $(CHART) --namespace shop --set prometheusRule.enabled=true \
		--show-only templates/prometheusrule.yaml | \
		$(RUN) python $(REPO_ROOT)/hack/chart/prometheus_rules.py extract $(CHART_TMP)/rules.yaml
	$(PROMTOOL) check rules $(CHART_TMP)/rules.yaml
	$(RUN) python $(REPO_ROOT)/hack/chart/prometheus_rules.py tests \
		$(REPO_ROOT)/tests/chart/prometheus/alerts.test.yaml $(CHART_TMP)/rules.yaml $(CHART_TMP)/alerts.test.yaml
	$(PROMTOOL) test rules $(CHART_TMP)/alerts.test.yaml

.PHONY: chart-checkov
chart-checkov: tools deps $(CHECKOV) ## checkov on every scenario's render (helm template --skip-tests): zero failures allowed
	@for scenario in $(CHART_SCENARIOS); do \
		dir=$(CHART_TMP)/checkov/$$scenario; rm -rf $$dir; mkdir -p $$dir; \
		$(HELM) template $(RELEASE) $(CHART) --namespace $(NAMESPACE) --skip-tests \
			-f $(CHART)/ci/$$scenario-values.yaml > $$dir/render.yaml; \
		printf 'checkov (%s): ' "$$scenario"; \
		$(CHECKOV) --file $$dir/render.yaml --framework kubernetes --skip-download --output json \
			> $$dir/checkov.json 2> $$dir/checkov.log || true; \
		$(RUN) python $(REPO_ROOT)/hack/chart/checkov_summary.py $$dir/checkov.json || exit 1; \
	done

$(CHECKOV):
	@python3 -m venv --help >/dev/null 2>&1 || $(MAKE) apt-install PACKAGES=python3-venv
	rm -rf $(TOOLS_DIR)/checkov-$(CHECKOV_VERSION)
	python3 -m venv $(TOOLS_DIR)/checkov-$(CHECKOV_VERSION)
	$(TOOLS_DIR)/checkov-$(CHECKOV_VERSION)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)

.PHONY: chart-docs
chart-docs: tools ## Regenerate charts/storefront/README.md from values.yaml (helm-docs)
	$(HELM_DOCS) --chart-search-root $(REPO_ROOT)/charts --sort-values-order file

.PHONY: chart-docs-check
chart-docs-check: tools
	@$(HELM_DOCS) --chart-search-root $(REPO_ROOT)/charts --sort-values-order file --dry-run --log-level warning | \
		diff -u $(CHART)/README.md - >/dev/null || \
		{ echo "charts/storefront/README.md is stale: run make chart-docs" >&2; exit 1; }
	@echo "chart README: up to date (helm-docs)"

.PHONY: chart-test
chart-test: tools deps system-deps chart-lint chart-kubeconform chart-rules chart-checkov chart-docs-check ## Lint, kubeconform, promtool, checkov and unit tests (Helm 4 and 3), README check, skaffold render
	@for helm in $(HELM) $(HELM3); do \
		echo "pytest tests/chart with $$($$helm version --template '{{.Version}}')"; \
		HELM="$$helm" PROMTOOL='$(PROMTOOL)' $(RUN) pytest tests/chart $(PYTEST_ARGS) || exit 1; \
	done
	cd $(REPO_ROOT) && PATH='$(BIN)':"$$PATH" $(SKAFFOLD) render --digest-source=tag --offline=true -p sync,airgap >/dev/null
	@echo "skaffold render: ok"

.PHONY: manifests
manifests: tools ## Render the plain manifests in k8s/ from the chart (for users without Helm)
	$(HELM) template $(RELEASE) $(CHART) --namespace $(NAMESPACE) --skip-tests \
		-f $(REPO_ROOT)/k8s/manifests-values.yaml > $(REPO_ROOT)/k8s/storefront.yaml
	@echo "wrote k8s/storefront.yaml"

.PHONY: namespace
namespace: tools
	@# The namespace enforces the Pod Security Standard "restricted": the
	@# chart's pods must be admitted under it.
	$(KUBECTL) --context $(KUBE_CONTEXT) create namespace $(NAMESPACE) --dry-run=client -o yaml | \
		$(KUBECTL) --context $(KUBE_CONTEXT) label --local -f - -o yaml \
			pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest \
			pod-security.kubernetes.io/warn=restricted | \
		$(KUBECTL) --context $(KUBE_CONTEXT) apply -f -

.PHONY: deploy
deploy: tools image namespace ## helm upgrade --install into the kind cluster (loads the image; air-gapped images when needed)
	$(MAKE) kind-load IMAGE='$(IMAGE)'
	@if [ -n "$(USE_AIRGAP_IMAGES)" ]; then $(MAKE) kind-load IMAGE='$(AIRGAP_PG_IMAGE) $(AIRGAP_REDIS_IMAGE)'; fi
	$(HELM) upgrade --install $(RELEASE) $(CHART) --kube-context $(KUBE_CONTEXT) \
		--namespace $(NAMESPACE) $(DEPLOY_VALUES) $(DEPLOY_FLAGS) \
		--set image.repository=$(firstword $(subst :, ,$(IMAGE))) --set image.tag=$(lastword $(subst :, ,$(IMAGE))) \
		--wait --timeout 10m
	$(HELM) test $(RELEASE) --kube-context $(KUBE_CONTEXT) --namespace $(NAMESPACE) --timeout 2m

.PHONY: port-forward
port-forward: ## Forward http://127.0.0.1:8000 to the API Service in the cluster
	$(KUBECTL) --context $(KUBE_CONTEXT) --namespace $(NAMESPACE) port-forward service/$(RELEASE) 8000:80

.PHONY: dev
dev: tools ## skaffold dev: build, load into kind, deploy with dev values, port-forward :8000 (PROFILES=sync for hot reload)
	@if [ -n "$(USE_AIRGAP_IMAGES)" ]; then $(MAKE) kind-load IMAGE='$(AIRGAP_PG_IMAGE) $(AIRGAP_REDIS_IMAGE)'; fi
	PATH='$(BIN)':"$$PATH" $(SKAFFOLD) dev --port-forward $(if $(SKAFFOLD_PROFILES),-p $(SKAFFOLD_PROFILES))

empty :=
space := $(empty) $(empty)
comma := ,
SKAFFOLD_PROFILES = $(subst $(space),$(comma),$(strip $(PROFILES) $(if $(USE_AIRGAP_IMAGES),airgap)))

.PHONY: e2e
e2e: tools image ## Cluster tier: kind-up, deploy (PSS restricted), end-to-end tests, kind-down (KEEP_CLUSTER=1 keeps it)
	$(MAKE) kind-up
	status=0; \
	$(MAKE) deploy DEPLOY_FLAGS='$(E2E_DEPLOY_FLAGS)' && \
	KUBE_CONTEXT='$(KUBE_CONTEXT)' NAMESPACE='$(NAMESPACE)' RELEASE='$(RELEASE)' KUBECTL='$(KUBECTL)' HELM='$(HELM)' \
		STOREFRONT_IMAGE='$(IMAGE)' DEPLOY_VALUES='$(DEPLOY_VALUES)' $(RUN) pytest tests/e2e $(PYTEST_ARGS) || status=$$?; \
	if [ -z "$(KEEP_CLUSTER)" ]; then $(MAKE) kind-down; fi; \
	exit $$status
