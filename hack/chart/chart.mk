# Helm chart, raw manifests and the dev loop.
#
# Uses (hack/common.mk): REPO_ROOT, BIN, DOCKER (the e2e v2 image, the docker
#   wrapper skaffold's kind runs through), KUBE_CONTEXT, AIRGAP_TOOL,
#   AIRGAP_ENV and the tool paths HELM (4), HELM3, KUBECTL, KUBECONFORM,
#   SKAFFOLD, PROMTOOL, HELM_DOCS, GATEWAY_API_CRDS.
# Uses (hack/airgap/airgap.mk): the tools, kind-up and kind-down targets.
# Uses (hack/image/image.mk): IMAGE and the image target.
# Uses (root Makefile): RUN, PYTEST_ARGS and the deps target.
include $(dir $(lastword $(MAKEFILE_LIST)))../common.mk

##@ Chart and cluster

CHART := $(REPO_ROOT)/charts/storefront
# Kubernetes version the rendered objects are validated against.
KUBE_VERSION ?= 1.34.0
RELEASE ?= storefront
NAMESPACE ?= storefront
CHART_SCENARIOS := default external-database gitops ha minimal cloudnativepg
# Extra `helm upgrade` flags for deploy (e.g. -f my-values.yaml).
DEPLOY_FLAGS ?=
# The e2e release runs the chart's default values: on three nodes they fit
# (API 2-6 pods x 250m CPU requested, PostgreSQL 100m, Redis 50m, on two
# 2-CPU workers), so nothing is shrunk. Add flags here only with a reason.
E2E_DEPLOY_FLAGS ?=
# The cluster's mode (`airgap mode`), asked once per make run: an air-gapped
# cluster cannot pull the official PostgreSQL/Redis images, so it runs the
# ones built from Debian packages (values-airgap.yaml names them; deploy
# builds and loads them).
USE_AIRGAP_IMAGES ?= $(eval USE_AIRGAP_IMAGES := $(filter airgap,$(shell $(AIRGAP_ENV) $(AIRGAP_TOOL) mode)))$(USE_AIRGAP_IMAGES)
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
deploy: tools image namespace ## helm upgrade --install into the kind cluster (loads the image; builds and loads the air-gapped PostgreSQL/Redis images when needed)
	$(AIRGAP_ENV) $(AIRGAP_TOOL) load '$(IMAGE)'
	@if [ -n "$(USE_AIRGAP_IMAGES)" ]; then $(AIRGAP_ENV) $(AIRGAP_TOOL) db-images --load; fi
	$(HELM) upgrade --install $(RELEASE) $(CHART) --kube-context $(KUBE_CONTEXT) \
		--namespace $(NAMESPACE) $(DEPLOY_VALUES) $(DEPLOY_FLAGS) \
		--set image.repository=$(firstword $(subst :, ,$(IMAGE))) --set image.tag=$(lastword $(subst :, ,$(IMAGE))) \
		--wait --timeout 10m
	$(HELM) test $(RELEASE) --kube-context $(KUBE_CONTEXT) --namespace $(NAMESPACE) --timeout 2m

.PHONY: port-forward
port-forward: ## Forward http://127.0.0.1:8000 to the API Service in the cluster
	$(KUBECTL) --context $(KUBE_CONTEXT) --namespace $(NAMESPACE) port-forward service/$(RELEASE) 8000:80

# skaffold loads images with `kind load docker-image`, which runs `docker
# exec --privileged`: hosts that refuse --privileged (ours) need the same
# docker wrapper `make kind-up` uses, first on PATH (`airgap kind-path` prints
# its directory, or nothing where it is not needed), and helm/kind from BIN.
SKAFFOLD_WITH_KIND = kind_path="$$($(AIRGAP_ENV) $(AIRGAP_TOOL) kind-path)"; \
	PATH='$(BIN)':"$${kind_path:+$$kind_path:}$$PATH" AIRGAP_REAL_DOCKER='$(DOCKER)' $(SKAFFOLD)
SKAFFOLD_PROFILE_FLAGS = $(if $(SKAFFOLD_PROFILES),-p $(SKAFFOLD_PROFILES))

.PHONY: dev-db-images
dev-db-images:
	@if [ -n "$(USE_AIRGAP_IMAGES)" ]; then $(AIRGAP_ENV) $(AIRGAP_TOOL) db-images --load; fi

.PHONY: dev
dev: tools dev-db-images ## skaffold dev: build, load into kind, deploy with dev values, port-forward :8000 (PROFILES=sync for hot reload)
	$(SKAFFOLD_WITH_KIND) dev --port-forward $(SKAFFOLD_PROFILE_FLAGS)

.PHONY: dev-run
dev-run: tools dev-db-images ## skaffold run: build, load and deploy the dev release once (PROFILES as for dev)
	$(SKAFFOLD_WITH_KIND) run $(SKAFFOLD_PROFILE_FLAGS)

.PHONY: dev-delete
dev-delete: tools ## skaffold delete: remove the dev release (its kept Secrets and the PostgreSQL volume stay)
	$(SKAFFOLD_WITH_KIND) delete $(SKAFFOLD_PROFILE_FLAGS)

empty :=
space := $(empty) $(empty)
comma := ,
SKAFFOLD_PROFILES = $(subst $(space),$(comma),$(strip $(PROFILES) $(if $(USE_AIRGAP_IMAGES),airgap)))

# The upgrade scenario's "v2": this tree's image plus one expand-style
# migration (tests/e2e/images/v2), test-only.
E2E_IMAGE_V2 ?= $(IMAGE)-e2e-v2

.PHONY: e2e-image-v2
e2e-image-v2: image
	@DOCKER_BUILDKIT=1 $(DOCKER) build --quiet --build-arg BASE_IMAGE='$(IMAGE)' --tag '$(E2E_IMAGE_V2)' \
		$(REPO_ROOT)/tests/e2e/images/v2 >/dev/null
	@echo "built $(E2E_IMAGE_V2)"

.PHONY: e2e
e2e: deps tools image e2e-image-v2 ## Cluster tier: kind-up, deploy (PSS restricted), end-to-end scenarios, kind-down (KEEP_CLUSTER=1 keeps it); builds whatever is missing
	@started=$$(date +%s); stamp() { echo "== e2e [$$(($$(date +%s) - started))s] $$*"; }; \
	stamp "kind-up"; $(MAKE) kind-up; \
	status=0; \
	stamp "deploy (chart defaults, Helm 4)"; \
	$(MAKE) deploy DEPLOY_FLAGS='$(E2E_DEPLOY_FLAGS)' && \
	$(AIRGAP_ENV) $(AIRGAP_TOOL) load '$(E2E_IMAGE_V2)' && \
	stamp "pytest tests/e2e" && \
	KUBE_CONTEXT='$(KUBE_CONTEXT)' NAMESPACE='$(NAMESPACE)' RELEASE='$(RELEASE)' KUBECTL='$(KUBECTL)' \
		HELM='$(HELM)' HELM3='$(HELM3)' STOREFRONT_IMAGE='$(IMAGE)' STOREFRONT_IMAGE_V2='$(E2E_IMAGE_V2)' \
		DEPLOY_VALUES='$(DEPLOY_VALUES)' $(RUN) pytest tests/e2e $(PYTEST_ARGS) || status=$$?; \
	if [ -z "$(KEEP_CLUSTER)" ]; then stamp "kind-down"; $(MAKE) kind-down; fi; \
	stamp "done (exit $$status)"; \
	exit $$status
