# syntax=docker/dockerfile:1
# proxy-stone-sd: the service-discovery agent (and operations CLI) in a small image.
#
#   docker build -t proxy-stone-sd .
#   docker run --rm -e SERVICE_DISCOVERY_ENDPOINTS=http://etcd:2379 -e SERVICE_HOST=proxy-stone-1 \
#     -e SERVICE_PORT=3001 -p 8790:8790 proxy-stone-sd
#
# Without SERVICE_DISCOVERY_ENDPOINTS the agent looks for etcd at http://127.0.0.1:2379, which inside a
# container is the container itself: it then logs registry.default_unreachable and /health answers 503.
#
# Any other command of the CLI runs the same way: `docker run --rm proxy-stone-sd status --endpoints ...`.

# Node 24 LTS, what operators run (Node 20 reached its end of life in April 2026).
ARG NODE_VERSION=24

# --- build: compile TypeScript, generate the oclif manifest and the CLI's start-up bundle (needs the dev dependencies) ---
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
# The CLI's start-up bundle and captured help (docs/decisions/0023-cli-start-up.md).
COPY scripts/build-fast-path.ts ./scripts/
RUN npm run build

# --- runtime: production dependencies and the compiled output only, as a non-root user ---
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini as PID 1: forwards SIGTERM to node and reaps zombies.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    SERVICE_DISCOVERY_API_HOST=0.0.0.0 \
    SERVICE_DISCOVERY_API_PORT=8790
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts are needed at runtime (the only one, protobufjs's, checks its own CLI tools).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/oclif.manifest.json ./
COPY bin ./bin
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN ln -s /app/bin/run.js /usr/local/bin/proxy-stone-sd \
  && chmod 0755 /app/bin/run.js /usr/local/bin/docker-entrypoint.sh
# The `node` user (uid 1000) comes with the base image.
USER node
EXPOSE 8790
# The agent's own health: 200 when it is registered and its view of the cluster is current.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SERVICE_DISCOVERY_API_PORT || 8790) + '/health', { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "docker-entrypoint.sh"]
CMD ["agent"]
