#!/usr/bin/env bash
# Writes the build benchmark's context into DIR: a Dockerfile of a few RUN steps, a COPY of ~50 MB
# in 200 files of random bytes, ENV and CMD. benches/build.sh (berth vs buildah) and
# benches/docker_api.sh (the docker CLI through berth vs dockerd) build the same one.
#
#   benches/build_context.sh DIR
set -euo pipefail
CTX="${1:?usage: build_context.sh DIR}"
mkdir -p "$CTX/data"
for i in $(seq -w 1 200); do
  head -c 262144 /dev/urandom > "$CTX/data/f$i.bin"
done
cat > "$CTX/Dockerfile" <<'DOCKERFILE'
FROM busybox
RUN echo preparing > /prepared
COPY data /data
RUN ls /data | wc -l > /count
RUN dd if=/dev/zero of=/zeros bs=1M count=8 2>/dev/null
RUN sha256sum /data/f001.bin > /sum
ENV MODE=bench
CMD ["cat", "/count"]
DOCKERFILE
