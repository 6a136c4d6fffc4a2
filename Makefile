# ocfs2-fuse — see README.md
SHELL := /bin/bash
NODE  ?= node
APT_PKGS := fuse3 libfuse3-dev pkg-config ocfs2-tools fuse2fs e2fsprogs attr xz-utils util-linux kmod
# the kernel tests' qemu harness (../shared/kernel/build.sh), the network-namespace tests, and bench
APT_PKGS += qemu-system-x86 busybox-static cpio iproute2 fio

.PHONY: all deps build test soak images bench demo clean install uninstall

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin

all: build

# Installs what a fresh machine lacks (Debian packages as root, then npm packages).
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "deps: need root to apt-get install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	npm ci --no-audit --no-fund
	$(MAKE) build

# dist/ is rebuilt from scratch: tsc never deletes the output of a moved or removed source file.
# dist/.build-start (its mtime: when this build read src/) lets the tests refuse a dist/ older than src/.
build:
	bash tools/build-native.sh
	rm -rf dist
	mkdir -p dist && touch dist/.build-start.tmp
	npx tsc -p tsconfig.json
	chmod +x dist/src/cli/main.js
	mv dist/.build-start.tmp dist/.build-start

# Long campaigns (make test runs a small slice): the corruption fuzz with hundreds of rounds.
soak: build
	FUZZ_ROUNDS=$${FUZZ_ROUNDS:-150} OCFS2_TEST_SEED=$${OCFS2_TEST_SEED:-$$RANDOM} bash test/run-tests.sh --timeout=0 test/corrupt-fuzz.test.ts

# `ocfs2-fuse` on the PATH (mount(8) runs fstab's fuse.ocfs2-fuse lines through
# mount.fuse3, which looks the program up in /usr/local/bin:/usr/bin:...).
install:
	@test -x dist/src/cli/main.js || $(MAKE) build
	install -d $(DESTDIR)$(BINDIR)
	ln -sfn $(CURDIR)/dist/src/cli/main.js $(DESTDIR)$(BINDIR)/ocfs2-fuse

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ocfs2-fuse

images: build
	bash images/make-fixtures.sh

test: build
	bash test/run-tests.sh

bench: build
	bash bench/run-bench.sh

demo: build
	bash tools/demo.sh

clean:
	rm -rf dist images/out

# O_DIRECT addon used by the o2hb disk heartbeat (src/native/directio.c).
.PHONY: native
native:
	bash tools/build-native.sh
