/**
 * What can be checked here of the deployment files, since no Docker engine
 * runs on these machines: docker-compose.yml, the Dockerfile and the CI
 * workflow parse, pin their images by version, and say what the service needs.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { ConfigSchema } from '../../plugins/config.ts'

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')

/** An image reference pinned to a version: a tag with at least major.minor, or a digest. */
const PINNED = /^[\w./-]+(:v?\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$/

t.test('docker-compose.yml: images pinned, three app replicas behind the load balancer', async t => {
  const compose = parse(read('docker-compose.yml'))
  const services = compose.services as Record<string, any>
  for (const [name, service] of Object.entries(services)) {
    if (service.image !== undefined) t.match(service.image, PINNED, `${name}: ${service.image} is pinned`)
    t.notMatch(String(service.image ?? ''), /:latest$/, `${name}: not :latest`)
  }
  const { app, lb } = services
  t.equal(app.build, '.', 'the app is built from the Dockerfile')
  t.equal(app.deploy?.replicas, 3, 'three replicas')
  t.equal(app.ports, undefined, 'replicas publish no port: reached through the load balancer only')
  t.equal(app.container_name, undefined, 'no container_name (it would forbid replicas)')
  t.ok(app.environment.AUTH_JWT_SECRET, 'one token secret for every replica')
  t.match(app.environment.MONGODB_URI, /^mongodb:\/\/mongo:27017\//, 'MongoDB of the compose network')
  t.match(app.environment.REDIS_NODES, /^redis:\/\/redis:6379$/, 'Redis of the compose network')
  t.same(lb.depends_on?.app, { condition: 'service_healthy' }, 'the load balancer waits for healthy replicas')
  t.same(lb.ports, ['8080:8080'])
  const nginx = read(lb.volumes[0].split(':')[0].replace(/^\.\//, ''))
  t.match(nginx, /server app:3000 resolve/, 'nginx balances over every address of the app service')
  t.match(nginx, /listen 8080;/)
  t.match(read('docker-compose.yml'), /cp \.env\.example \.env[\s\S]*npm start/, 'the header says cp .env.example .env, then npm start')
})

t.test('Dockerfile: multi-stage, Node 24 pinned, non-root, HEALTHCHECK, plain node', async t => {
  const dockerfile = read('Dockerfile')
  const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1]
  t.match(base, /^node:24\.\d+\.\d+-[a-z]+-slim$/, 'node 24 pinned by exact version')
  t.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage')
  t.match(dockerfile, /npm ci --omit=dev/, 'production dependencies only in the image')
  t.match(dockerfile, /^USER node$/m, 'runs as the unprivileged node user')
  t.match(dockerfile, /^HEALTHCHECK [\s\S]*\/health/m, 'a HEALTHCHECK on /health')
  t.match(dockerfile, /^CMD \["node", "dist\/server\.js"\]$/m, 'plain node on the compiled server')
})

t.test('Dockerfile: the build stage copies everything the build reads, and the image gets a plain dist/', async t => {
  const dockerfile = read('Dockerfile')
  const buildStage = dockerfile.slice(dockerfile.indexOf(' AS build'), dockerfile.indexOf(' AS deps'))
  const copied = [...buildStage.matchAll(/^COPY (.+) \S+$/gm)].flatMap(([, sources]) => sources.split(' '))
  const { include } = JSON.parse(read('tsconfig.build.json').replace(/^\s*\/\/.*$/gm, '')) as { include: string[] }
  for (const path of [...include, 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs']) t.ok(copied.includes(path), `${path} is copied`, { copied })
  // npm run build leaves dist as a symlink to its build's folder: what reaches the image is the folder itself
  t.match(buildStage, /RUN npm run build && cp -RL dist \/app\/dist-image/)
  t.match(dockerfile, /^COPY --from=build \/app\/dist-image dist$/m)
})

t.test('.github/workflows/ci.yml: services, a MongoDB replica set, .ci/run with MONGODB_URI', async t => {
  const workflow = parse(read('.github/workflows/ci.yml'))
  const jobs = Object.values(workflow.jobs as Record<string, any>)
  t.equal(jobs.length, 1)
  const [job] = jobs
  t.equal(job['runs-on'], 'ubuntu-latest')
  for (const [name, service] of Object.entries(job.services as Record<string, any>)) t.match(service.image, PINNED, `service ${name} pinned`)
  t.ok(job.services.redis && job.services.postgres, 'Redis and PostgreSQL service containers')
  const steps = job.steps as Array<{ run?: string, env?: Record<string, string> }>
  t.ok(steps.some(s => /--replSet rs0/.test(s.run ?? '') && /mongo:7\.\d+/.test(s.run ?? '')), 'mongo 7 started as a replica set')
  t.ok(steps.some(s => /rs\.initiate/.test(s.run ?? '')), 'and initiated')
  const ci = steps.find(s => /bash \.ci\/run/.test(s.run ?? ''))
  t.match(ci?.env?.MONGODB_URI ?? job.env?.MONGODB_URI, /replicaSet=rs0/, '.ci/run runs with MONGODB_URI set')
})

t.test('the README points at the configuration reference generated from the schema', async t => {
  // every variable's row, and .env.example's line for it, are test/unit/config-reference.test.ts's
  t.match(read('README.md'), '(docs/configuration.md)', 'the README links docs/configuration.md')
})
