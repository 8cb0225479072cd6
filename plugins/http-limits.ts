import fp from 'fastify-plugin'

/**
 * Limits of the HTTP server, from the config: how long a request's headers and
 * whole request (body included) may take to arrive (then 408 and the
 * connection closed, so a client trickling bytes cannot hold it), how long an
 * idle keep-alive or silent connection is kept, and how many connections are
 * open at once (beyond it a new connection is closed as soon as it is
 * accepted). These are the Node server properties Fastify's own
 * requestTimeout, keepAliveTimeout and connectionTimeout options set; they are
 * set here because the config is read after Fastify is created.
 */
export default fp(async (fastify) => {
  const { REQUEST_TIMEOUT_MS, HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, CONNECTION_TIMEOUT_MS, MAX_CONNECTIONS } = fastify.config
  const server = fastify.server
  server.requestTimeout = REQUEST_TIMEOUT_MS
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  server.setTimeout(CONNECTION_TIMEOUT_MS)
  server.maxConnections = MAX_CONNECTIONS
}, { name: 'http-limits', dependencies: ['config'] })
