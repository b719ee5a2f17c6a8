# syntax=docker/dockerfile:1
# Arkloop in a container: one image for every role (serve, api, worker, gateway, migrate).
# Build: docker build -t arkloop .      Run: docker run -p 19001:19001 -v arkloop-data:/data arkloop
# This file could not be built on the machine it was written on (no Docker daemon there); it is
# linted by test/deploy-lint.test.ts.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
# npm ci runs `prepare`, which compiles src/ into dist/.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    ARKLOOP_API_ADDR=0.0.0.0:19001 \
    ARKLOOP_GATEWAY_ADDR=0.0.0.0:19000 \
    ARKLOOP_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY migrations ./migrations
COPY personas ./personas
COPY web ./web
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 19001 19000
# /readyz of the API (serve, api); a worker or gateway container overrides this in compose.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('http').get('http://127.0.0.1:19001/readyz', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
ENTRYPOINT ["node", "bin/arkloop.js"]
CMD ["serve"]
