# Shared by the make fragments under hack/ (airgap/airgap.mk, image/image.mk,
# chart/chart.mk): each includes it first, so the include order in the root
# Makefile does not matter and a fragment also works alone
# (`make -f hack/airgap/airgap.mk kind-up`).
#
# Defines (override on the command line or in the environment):
#   REPO_ROOT     the clone                              (the parent of hack/)
#   BIN           where `make tools` installs            ($(REPO_ROOT)/bin)
#   DOCKER        the docker client, decided in ONE place: hack/lib/docker.sh
#   KIND_CLUSTER  the kind cluster                       (storefront)
#   KUBE_CONTEXT  its kube context                       (kind-$(KIND_CLUSTER))
#   AIRGAP_TOOL   hack/airgap/airgap, the cluster toolchain's entry point
#   AIRGAP_ENV    the variables above, as an environment prefix for AIRGAP_TOOL
#   KIND KUBECTL HELM HELM3 KUBECONFORM SKAFFOLD PROMTOOL HELM_DOCS
#   TOXIPROXY_SERVER TOXIPROXY_CLI VEGETA GATEWAY_API_CRDS
#                 the tools `make tools` puts in $(BIN), by the names the
#                 other fragments and the tests use
ifndef HACK_COMMON_MK
HACK_COMMON_MK := $(abspath $(lastword $(MAKEFILE_LIST)))
HACK_DIR := $(patsubst %/,%,$(dir $(HACK_COMMON_MK)))

REPO_ROOT ?= $(abspath $(HACK_DIR)/..)
BIN ?= $(REPO_ROOT)/bin
DOCKER ?= $(shell bash $(HACK_DIR)/lib/docker.sh)
KIND_CLUSTER ?= storefront
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
AIRGAP_TOOL := $(HACK_DIR)/airgap/airgap
# The tool reads everything else it needs (AIRGAP, AIRGAP_CACHE, AIRGAP_JOBS,
# KIND_CONFIG, ...) from the environment: make passes command-line variables on.
AIRGAP_ENV = REPO_ROOT='$(REPO_ROOT)' BIN_DIR='$(BIN)' DOCKER='$(DOCKER)' KIND_CLUSTER='$(KIND_CLUSTER)'

KIND ?= $(BIN)/kind
KUBECTL ?= $(BIN)/kubectl
HELM ?= $(BIN)/helm
HELM3 ?= $(BIN)/helm3
KUBECONFORM ?= $(BIN)/kubeconform
SKAFFOLD ?= $(BIN)/skaffold
PROMTOOL ?= $(BIN)/promtool
HELM_DOCS ?= $(BIN)/helm-docs
TOXIPROXY_SERVER ?= $(BIN)/toxiproxy-server
TOXIPROXY_CLI ?= $(BIN)/toxiproxy-cli
VEGETA ?= $(BIN)/vegeta
GATEWAY_API_CRDS ?= $(BIN)/crds/gateway-api
endif
