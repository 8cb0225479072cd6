/**
 * A real webhook receiver on 127.0.0.1, as an integrator writes one: every
 * delivery's signature is verified with the standardwebhooks package (the
 * secret is set once the endpoint is made), and every delivery is kept, in
 * the order it came. It can answer 2xx, 500 or 410, or be down (its port
 * closed, then opened again on the same port).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import type { TestContext } from './context.ts'

export interface Delivery {
  id: string
  timestamp: string
  /** the change as delivered */
  change: { id: string, type: string, occurredAt: string, eventId: string, data: any }
  verified: boolean
  /** what the receiver answered */
  status: number
}

export type ReceiverMode = 'ok' | 'fail' | 'gone'

export interface Receiver {
  url: string
  /** every request, in arrival order (failed ones included) */
  deliveries: Delivery[]
  setSecret: (secret: string) => void
  mode: ReceiverMode
  /** closes the port (connections refused) until `up` */
  down: () => Promise<void>
  up: () => Promise<void>
  /** the ids answered 2xx, de-duplicated, in the order first accepted */
  accepted: () => Delivery[]
}

export async function startReceiver (t: TestContext, path = '/hook'): Promise<Receiver> {
  let verifier: Webhook | undefined
  const deliveries: Delivery[] = []
  let server: Server
  let port = 0
  const receiver: Receiver = {
    url: '',
    deliveries,
    mode: 'ok',
    setSecret: (secret) => { verifier = new Webhook(secret) },
    down: async () => { await new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() }) },
    up: async () => { await listen() },
    accepted () {
      const seen = new Set<string>()
      return deliveries.filter(d => d.status < 300 && !seen.has(d.id) && seen.add(d.id) !== undefined)
    }
  }
  async function listen (): Promise<void> {
    server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]))
        let verified = false
        try {
          verifier?.verify(body, headers)
          verified = verifier !== undefined
        } catch { verified = false }
        const status = receiver.mode === 'ok' ? 204 : receiver.mode === 'gone' ? 410 : 500
        deliveries.push({ id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], change: JSON.parse(body), verified, status })
        res.writeHead(status).end()
      })
    })
    await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
    receiver.url = `http://127.0.0.1:${port}${path}`
  }
  await listen()
  t.teardown(async () => { await new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() }) })
  return receiver
}
