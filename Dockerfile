# blueprint-operator: the daemon, built from source. Configure with a TOML file mounted at /etc/blueprint-operator.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY core core
COPY config config
COPY chain chain
COPY pricing pricing
COPY provisioners provisioners
COPY daemon daemon
COPY bin bin
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# ssh client tools for SSH targets' key handling; ca-certificates for HTTPS artifact downloads and RPC endpoints
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/package.json package.json
COPY --from=build /app/bin bin
# the Solidity sources are compiled in-process when a dev chain is started (npm run dev); kept beside the build
COPY --from=build /app/chain/contracts/*.sol chain/contracts/
COPY --from=build /app/daemon/dev/demo-service.mjs dist/daemon/dev/demo-service.mjs
USER node
VOLUME ["/var/lib/blueprint-operator"]
EXPOSE 9464
ENTRYPOINT ["node", "bin/blueprint-operator.mjs"]
CMD ["run", "--config", "/etc/blueprint-operator/operator.toml"]
