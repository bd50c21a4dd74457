# blueprint-operator: the daemon, built from source with the committed lock file (npm ci: the same dependency tree
# on every build). Run:
#   docker run -d --name bpo -p 9464:9464 -v bpo-data:/var/lib/blueprint-operator \
#     -v /etc/blueprint-operator:/etc/blueprint-operator:ro -e OPERATOR_PRIVATE_KEY=0x… blueprint-operator
# The image listens on 0.0.0.0:9464 and keeps its state on the volume (BPO_HTTP_LISTEN and BPO_DATA_DIR override
# [http] listen and [operator] data_dir of the mounted operator.toml). It runs as the unprivileged `node` user, so
# [providers.local] workload_user (which needs root) is not available in it.
# With podman, build with `--format docker` (an OCI image config drops the HEALTHCHECK); without Docker Hub,
# scripts/build-image.sh makes a stand-in for the node base from Debian's mirror and builds this file on it.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 builds from source when its prebuilt binary cannot be fetched
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY core core
COPY config config
COPY chain chain
COPY pricing pricing
COPY provisioners provisioners
COPY daemon daemon
COPY bin bin
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# ssh client tools for SSH targets; ca-certificates for HTTPS artifact downloads and RPC endpoints
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/package.json package.json
COPY --from=build /app/bin bin
# the Solidity sources are compiled in-process when a dev chain is started (npm run dev); kept beside the build
COPY --from=build /app/chain/contracts/*.sol chain/contracts/
ENV NODE_ENV=production \
    BPO_USE_DIST=1 \
    BPO_HTTP_LISTEN=0.0.0.0:9464 \
    BPO_DATA_DIR=/var/lib/blueprint-operator
# the volume's mount point belongs to the runtime user before it is declared: a fresh named volume inherits it
RUN mkdir -p /var/lib/blueprint-operator /etc/blueprint-operator \
    && chown node:node /var/lib/blueprint-operator && chmod 0700 /var/lib/blueprint-operator
USER node
VOLUME ["/var/lib/blueprint-operator"]
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "bin/healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/blueprint-operator.mjs"]
CMD ["run", "--config", "/etc/blueprint-operator/operator.toml"]
