# Portcullis: the SMTP edge and its bundled transport engine, as one image.
# Build:  docker build -t portcullis .
# Run:    docker run -p 25:2525 -v $PWD/rules:/app/rules:ro -v portcullis-data:/app/data portcullis
# See docs/operations.md for the volumes, the ports and the health check.

# --- build stage: compile TypeScript with the dev dependencies, then drop them ---
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
# Only src/ is compiled into the image; tsconfig's test/ and bench/ are absent here on purpose.
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev

# --- runtime stage: compiled code and production dependencies only ---
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The layout mirrors the repository: relative paths in a rule set resolve against the rule file's
# directory, so the default set's `../data` is /app/data here, as it is ./data in a checkout.
# Mount your own rules directory over /app/rules.
COPY rules ./rules
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
USER node
# 2525: the default SMTP listener; 9325: /metrics and /healthz (metrics.listen must bind 0.0.0.0 to be reached from outside).
EXPOSE 2525 9325
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9325/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# `docker stop` sends SIGTERM, and serve lets sessions in flight finish for up to shutdownGraceMs
# (30 s by default): run with `docker stop -t 35` / `stop_grace_period: 35s`, or docker kills it at 10 s.
CMD ["node", "/app/dist/src/cli/main.js", "serve", "--config", "/app/rules/portcullis.yaml"]
