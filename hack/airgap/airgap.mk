# Make fragment for the kind cluster and its air-gapped toolchain.
# The root Makefile includes it (`include hack/airgap/airgap.mk`); it also
# works alone: `make -f hack/airgap/airgap.mk kind-up`.
# Every target runs a script in hack/airgap/ (see hack/airgap/README.md).
#
# Variables (override on the command line or in the environment):
#   KIND_CLUSTER   cluster name                      (storefront)
#   AIRGAP         1 | 0 | auto: build our node image, use kind's stock one,
#                  or decide by probing for a registry   (auto)
#   AIRGAP_CACHE   build cache, outside the clone    ($HOME/.cache/storefront-airgap)
#   AIRGAP_JOBS    parallel Go compile jobs          (2)
#   KIND_CONFIG    kind config                       (k8s/kind-config.yaml)
#   IMAGE          image(s) for kind-load, space separated
#   DOCKER         docker client                     (/usr/bin/docker)

# Where this fragment lives, captured before any later include changes
# MAKEFILE_LIST.
AIRGAP_MK_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

REPO_ROOT ?= $(abspath $(AIRGAP_MK_DIR)/../..)
AIRGAP_DIR ?= $(REPO_ROOT)/hack/airgap
KIND_CLUSTER ?= storefront
AIRGAP ?= auto
AIRGAP_CACHE ?= $(HOME)/.cache/storefront-airgap
AIRGAP_JOBS ?= 2
KIND_CONFIG ?= $(REPO_ROOT)/k8s/kind-config.yaml
IMAGE ?=
DOCKER ?= $(firstword $(wildcard /usr/bin/docker) docker)

# Passed to every script explicitly rather than exported, so that these
# names do not leak into the environment of the root Makefile's recipes.
AIRGAP_ENV = REPO_ROOT='$(REPO_ROOT)' KIND_CLUSTER='$(KIND_CLUSTER)' AIRGAP='$(AIRGAP)' \
	AIRGAP_CACHE='$(AIRGAP_CACHE)' AIRGAP_JOBS='$(AIRGAP_JOBS)' KIND_CONFIG='$(KIND_CONFIG)' \
	DOCKER='$(DOCKER)'

##@ Kind cluster (hack/airgap; air-gapped builds)

.PHONY: tools airgap-build airgap-status airgap-images airgap-clean kind-up kind-down kind-load kind-verify

tools: ## Build helm, skaffold, kubeconform, kind, kubectl from Go modules into bin/ (cached)
	$(AIRGAP_ENV) $(AIRGAP_DIR)/build-tools.sh

airgap-build: ## Build everything for an air-gapped kind cluster (idempotent, cached)
	$(AIRGAP_ENV) $(AIRGAP_DIR)/airgap-build.sh

airgap-status: ## Show what is built or missing; fails unless an air-gapped cluster needs nothing built
	$(AIRGAP_ENV) $(AIRGAP_DIR)/status.sh

airgap-images: ## Build the local PostgreSQL and Redis images (storefront-airgap/postgres:15, redis:7)
	$(AIRGAP_ENV) $(AIRGAP_DIR)/build-db-images.sh

airgap-clean: ## Remove built images, the build cache and the tools in bin/
	$(AIRGAP_ENV) $(AIRGAP_DIR)/clean.sh

kind-up: ## Create the kind cluster (AIRGAP=auto|1|0) with metrics-server
	$(AIRGAP_ENV) $(AIRGAP_DIR)/kind-up.sh

kind-down: ## Delete the kind cluster and what it left on the host
	$(AIRGAP_ENV) $(AIRGAP_DIR)/kind-down.sh

kind-load: ## Load local image(s) into the cluster: make kind-load IMAGE=name:tag
	@test -n "$(IMAGE)" || { echo "usage: make kind-load IMAGE=name:tag [IMAGE='a:1 b:2']" >&2; exit 2; }
	$(AIRGAP_ENV) $(AIRGAP_DIR)/kind-load.sh $(IMAGE)

kind-verify: ## Check the running cluster: pods Ready, kind load, a pod, a PVC, kubectl top
	$(AIRGAP_ENV) $(AIRGAP_DIR)/verify.sh
