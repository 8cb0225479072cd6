# The service's image: the compiled JS (npm run build) run by plain node, as the
# unprivileged `node` user. docker-compose.yml runs three replicas of it behind nginx.
#   docker build -t ticket-booking .
# Pinned by exact version (Node 24 LTS): bump deliberately.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# 1. compile TypeScript to dist/ (needs the dev dependencies: typescript)
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json server.ts serve.ts app.ts ./
COPY scripts/build.mjs scripts/
COPY lib lib
COPY plugins plugins
COPY routes routes
COPY types types
# dist is a symlink to the build's own folder (scripts/build.mjs): copied out as a plain folder
RUN npm run build && cp -RL dist /app/dist-image

# 2. the production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# 3. what runs: node_modules, dist/, package.json ("type": "module")
FROM ${NODE_IMAGE}
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist-image dist
COPY package.json ./
# the embedded store's (and development mode's) directory, writable by the service alone
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
# liveness: the process answers (/health contacts no dependency); node's fetch, no curl in a slim image
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM reaches node itself (no npm, no shell): in-flight requests finish, then exit 0
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
