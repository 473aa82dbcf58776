# Make fragment for the kind cluster and the tools built from Go modules.
# Every target runs the one entry point, hack/airgap/airgap (see
# hack/airgap/README.md); the root Makefile includes this file, and it also
# works alone: `make -f hack/airgap/airgap.mk kind-up`.
#
# Uses (hack/common.mk): AIRGAP_TOOL, AIRGAP_ENV.
# Provides the targets below; variables read from the environment by the
# tool: KIND_CLUSTER, AIRGAP (auto|1|0), AIRGAP_CACHE, AIRGAP_JOBS,
# KIND_CONFIG; IMAGE for kind-load (image.mk sets it to this tree's image).
include $(dir $(lastword $(MAKEFILE_LIST)))../common.mk

##@ Kind cluster and tools (hack/airgap)

.PHONY: tools test-tools airgap-build airgap-status airgap-images airgap-clean kind-up kind-down kind-load kind-verify

tools: ## Build every tool (kind, kubectl, helm v4 + helm3, kubeconform, skaffold, promtool, helm-docs, toxiproxy, vegeta, Gateway API CRDs) into bin/ (cached)
	@$(AIRGAP_ENV) $(AIRGAP_TOOL) tools

test-tools: ## Build toxiproxy-server/-cli and vegeta into bin/ (what the Python test tiers start; instant when cached)
	@$(AIRGAP_ENV) $(AIRGAP_TOOL) test-tools

airgap-build: ## Build everything for an air-gapped kind cluster (idempotent, cached; prints each step's time)
	$(AIRGAP_ENV) $(AIRGAP_TOOL) build

airgap-status: ## Show what is built or missing; fails unless an air-gapped cluster needs nothing built
	@$(AIRGAP_ENV) $(AIRGAP_TOOL) status

airgap-images: ## Build the local PostgreSQL 17 and Redis 8 images (storefront-airgap/postgres:17, redis:8)
	$(AIRGAP_ENV) $(AIRGAP_TOOL) db-images

airgap-clean: ## Remove built images, the build cache and the tools in bin/
	$(AIRGAP_ENV) $(AIRGAP_TOOL) clean

kind-up: ## Create the 3-node kind cluster (AIRGAP=auto|1|0; builds what is missing) with metrics-server
	$(AIRGAP_ENV) $(AIRGAP_TOOL) up

kind-down: ## Delete the kind cluster and what it left on the host
	$(AIRGAP_ENV) $(AIRGAP_TOOL) down

kind-load: ## Load local image(s) into every node: make kind-load IMAGE=name:tag (default: this tree's image)
	@test -n "$(IMAGE)" || { echo "usage: make kind-load IMAGE=name:tag [IMAGE='a:1 b:2']" >&2; exit 2; }
	$(AIRGAP_ENV) $(AIRGAP_TOOL) load $(IMAGE)

kind-verify: ## Prove the running cluster works: nodes, pods on both workers, cross-node pod and Service traffic, DNS, NetworkPolicy, PVC, kubectl top
	$(AIRGAP_ENV) $(AIRGAP_TOOL) verify
