# ccard service image: the compiled JavaScript (dist/), production dependencies only, running as the unprivileged
# `node` user. Build: docker build -t ccard .   (docker-compose.yml builds it as service "ccard")

# --- build: every dependency (TypeScript), compile src/ to dist/, then drop the development dependencies
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# --- runtime: no sources, no compiler, no npm in the process tree
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the service user: the process cannot rewrite its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/bin/ccard.mjs ./bin/ccard.mjs
USER node
# 8040: outbound event socket (FreeSWITCH connects here); 8041: HTTP API + /cdr
EXPOSE 8040 8041
# SIGTERM drains the calls in progress for up to 30 s: give `docker stop` more (docker-compose.yml: stop_grace_period).
STOPSIGNAL SIGTERM
# Operator commands: docker compose exec ccard node bin/ccard.mjs <group> <command>
CMD ["node", "dist/main.js", "serve"]
