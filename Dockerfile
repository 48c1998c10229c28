# ccard service image. Build: docker build -t ccard .   (docker-compose.yml builds it as service "ccard")
# The web console is built with the dev dependencies (vite, react) in a stage of its own; only dist/web is kept.
FROM node:20-slim AS web
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./web
RUN npm run build:web

FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, for layer caching. tsx (the TypeScript runner `npm start` uses) is a runtime dependency.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Only what the service runs (the sounds are mounted into FreeSWITCH, not needed here).
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY --from=web /app/dist/web ./dist/web

USER node
# 8040: outbound event socket (FreeSWITCH connects here); 8041: HTTP API, /cdr and the web console
EXPOSE 8040 8041
CMD ["npm", "start"]
