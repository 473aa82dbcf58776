# Helm chart, raw manifests and the dev loop.
#
# Uses (hack/common.mk): REPO_ROOT, BIN, KUBE_CONTEXT, AIRGAP_TOOL,
#   AIRGAP_ENV and the tool paths HELM, KUBECTL, KUBECONFORM, SKAFFOLD.
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
CHART_SCENARIOS := default external-database ha minimal
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
# CRDs we render but that have no upstream schema (Prometheus Operator).
KUBECONFORM_SKIP := ServiceMonitor

.PHONY: kube-schemas
kube-schemas:
	@bash $(REPO_ROOT)/hack/chart/kube-schemas.sh >/dev/null

.PHONY: chart-lint
chart-lint: tools ## helm lint --strict with every CI values file
	@for scenario in $(CHART_SCENARIOS); do \
		echo "helm lint --strict ($$scenario)"; \
		$(HELM) lint --strict $(CHART) -f $(CHART)/ci/$$scenario-values.yaml >/dev/null || exit 1; \
	done
	$(HELM) lint --strict $(CHART) -f $(CHART)/values-dev.yaml -f $(CHART)/values-airgap.yaml

.PHONY: chart-test
chart-test: tools deps kube-schemas chart-lint ## Lint, kubeconform (strict, Kubernetes 1.34 schemas) on every scenario, unit tests, skaffold render
	@schemas="$$(bash $(REPO_ROOT)/hack/chart/kube-schemas.sh)"; \
	for scenario in $(CHART_SCENARIOS); do \
		echo "kubeconform -strict ($$scenario)"; \
		$(HELM) template $(RELEASE) $(CHART) --namespace $(NAMESPACE) -f $(CHART)/ci/$$scenario-values.yaml | \
		$(KUBECONFORM) -strict -summary -kubernetes-version $(KUBE_VERSION) -skip $(KUBECONFORM_SKIP) \
			-schema-location "$$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" - || exit 1; \
	done
	HELM='$(HELM)' $(RUN) pytest tests/chart $(PYTEST_ARGS)
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

.PHONY: dev
dev: tools ## skaffold dev: build, load into kind, deploy with dev values, port-forward :8000 (PROFILES=sync for hot reload)
	@if [ -n "$(USE_AIRGAP_IMAGES)" ]; then $(AIRGAP_ENV) $(AIRGAP_TOOL) db-images --load; fi
	PATH='$(BIN)':"$$PATH" $(SKAFFOLD) dev --port-forward $(if $(SKAFFOLD_PROFILES),-p $(SKAFFOLD_PROFILES))

empty :=
space := $(empty) $(empty)
comma := ,
SKAFFOLD_PROFILES = $(subst $(space),$(comma),$(strip $(PROFILES) $(if $(USE_AIRGAP_IMAGES),airgap)))

.PHONY: e2e
e2e: deps tools image ## Cluster tier: kind-up, deploy (PSS restricted), end-to-end tests, kind-down (KEEP_CLUSTER=1 keeps it); builds whatever is missing
	$(MAKE) kind-up
	status=0; \
	$(MAKE) deploy DEPLOY_FLAGS='$(E2E_DEPLOY_FLAGS)' && \
	KUBE_CONTEXT='$(KUBE_CONTEXT)' NAMESPACE='$(NAMESPACE)' RELEASE='$(RELEASE)' KUBECTL='$(KUBECTL)' HELM='$(HELM)' \
		STOREFRONT_IMAGE='$(IMAGE)' DEPLOY_VALUES='$(DEPLOY_VALUES)' $(RUN) pytest tests/e2e $(PYTEST_ARGS) || status=$$?; \
	if [ -z "$(KEEP_CLUSTER)" ]; then $(MAKE) kind-down; fi; \
	exit $$status
