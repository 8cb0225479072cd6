/**
 * The operations of a served OpenAPI 3.0 document, and what the document
 * says of a request and of an answer: which inputs are valid (an oracle built
 * from its parameters and request bodies alone) and whether an answer's
 * status, body and headers are the ones it declares (Ajv, component
 * references resolved).
 */
import { Ajv, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { JsonSchema } from './schema-arbitrary.ts'

export interface Parameter { name: string, in: 'path' | 'query' | 'header', required?: boolean, schema: JsonSchema }
interface MediaType { schema: JsonSchema }
interface ResponseObject { headers?: Record<string, { schema: JsonSchema }>, content?: Record<string, MediaType> }

export interface Operation {
  operationId: string
  method: string
  /** as in the document: /api/bookings/{id} */
  path: string
  parameters: Parameter[]
  body?: { required: boolean, schema: JsonSchema }
  responses: Record<string, ResponseObject>
}

/** What a request sends: path parameters (raw, as they go in the URL), query and header values as text, a body. */
export interface RequestParts {
  path: Record<string, string>
  query: Record<string, string>
  headers: Record<string, string>
  /** JSON (any value), or a raw body of some content type; absent: no body */
  body?: { json: unknown } | { raw: string, contentType: string }
}

/** The body over the server's limit (64 KiB): no schema says it, the document's 413 does. */
export const BODY_LIMIT = 64 * 1024

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const

export function operationsOf (document: JsonSchema): Operation[] {
  const operations: Operation[] = []
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, any>>)) {
    for (const method of METHODS) {
      const op = item[method]
      if (op === undefined) continue
      const body = op.requestBody?.content?.['application/json']?.schema
      operations.push({
        operationId: op.operationId,
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        ...(body === undefined ? {} : { body: { required: op.requestBody.required !== false, schema: body } }),
        responses: op.responses
      })
    }
  }
  return operations
}

/** `#/components/...` references made to point into the document added to Ajv under DOCUMENT_ID. */
const DOCUMENT_ID = 'openapi.json'
function anchored (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(anchored)
  if (schema === null || typeof schema !== 'object') return schema
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? DOCUMENT_ID + v : anchored(v)]))
}

export interface DocumentChecks {
  /** why the request is invalid by the document, or undefined when it is valid */
  requestProblem: (op: Operation, parts: RequestParts) => string | undefined
  /** why the answer is not one the document declares for the operation, or undefined */
  answerProblem: (op: Operation, status: number, headers: Record<string, string>, text: string) => string | undefined
}

export function documentChecks (document: JsonSchema): DocumentChecks {
  const options = { strict: false, allErrors: false, validateSchema: false } as const
  // bodies are JSON as sent; path, query and header values are text, read as their schema's type
  const jsonAjv = new Ajv({ ...options, coerceTypes: false })
  const textAjv = new Ajv({ ...options, coerceTypes: 'array' })
  for (const ajv of [jsonAjv, textAjv]) {
    addFormats(ajv)
    ajv.addSchema({ components: document.components }, DOCUMENT_ID)
  }
  const compiled = new Map<string, ValidateFunction>()
  const validator = (ajv: Ajv, key: string, schema: JsonSchema): ValidateFunction => {
    let validate = compiled.get(key)
    if (validate === undefined) {
      validate = ajv.compile(anchored(schema) as JsonSchema)
      compiled.set(key, validate)
    }
    return validate
  }
  const problem = (validate: ValidateFunction, where: string): string =>
    `${where}${validate.errors?.[0]?.instancePath ?? ''} ${validate.errors?.[0]?.message ?? 'is invalid'}`

  /** the parameters of one place as one object schema (unknown query fields are refused, as the service does) */
  const paramsSchema = (op: Operation, place: Parameter['in']): JsonSchema => {
    const params = op.parameters.filter(p => p.in === place)
    return {
      type: 'object',
      properties: Object.fromEntries(params.map(p => [p.name, p.schema])),
      required: params.filter(p => p.required === true || place === 'path').map(p => p.name),
      ...(place === 'query' && params.length > 0 ? { additionalProperties: false } : {})
    }
  }

  return {
    requestProblem (op, parts) {
      const path: Record<string, string> = {}
      for (const [name, raw] of Object.entries(parts.path)) {
        try {
          path[name] = decodeURIComponent(raw)
        } catch {
          return `path.${name} is not a valid URL component`
        }
      }
      const declaredHeaders = new Set(op.parameters.filter(p => p.in === 'header').map(p => p.name))
      const headers = Object.fromEntries(Object.entries(parts.headers).filter(([name]) => declaredHeaders.has(name)))
      for (const [place, values] of [['path', path], ['query', parts.query], ['header', headers]] as const) {
        const validate = validator(textAjv, `${op.operationId} ${place}`, paramsSchema(op, place))
        if (!validate(structuredClone(values))) return problem(validate, place)
      }
      if (parts.body !== undefined && 'raw' in parts.body) {
        if (parts.body.contentType !== 'application/json') return `a ${parts.body.contentType} body`
        if (parts.body.raw.length > BODY_LIMIT) return `a body over ${BODY_LIMIT} bytes`
        try {
          JSON.parse(parts.body.raw)
        } catch {
          return 'a body that is not JSON'
        }
        return op.body === undefined ? undefined : 'a raw body the test does not validate'
      }
      if (op.body === undefined) return undefined
      if (parts.body === undefined) return op.body.required ? 'no body' : undefined
      const validate = validator(jsonAjv, `${op.operationId} body`, op.body.schema)
      return validate(structuredClone(parts.body.json)) ? undefined : problem(validate, 'body')
    },

    answerProblem (op, status, headers, text) {
      const declared = op.responses[String(status)]
      if (declared === undefined) return `status ${status} is not declared (declared: ${Object.keys(op.responses).join(', ')})`
      const contentType = (headers['content-type'] ?? '').split(';')[0].trim()
      const media = declared.content?.[contentType]
      if (media === undefined) return `${status}: content type ${contentType || '(none)'} is not declared`
      let body: unknown = text
      if (contentType === 'application/json') {
        try {
          body = JSON.parse(text)
        } catch {
          return `${status}: the body is not JSON`
        }
      }
      const validate = validator(jsonAjv, `${op.operationId} ${status} ${contentType}`, media.schema)
      if (!validate(body)) return `${status}: ${problem(validate, 'body')}: ${text.slice(0, 300)}`
      for (const [name, header] of Object.entries(declared.headers ?? {})) {
        const value = headers[name.toLowerCase()]
        if (value === undefined) continue
        const check = validator(textAjv, `${op.operationId} ${status} header ${name}`, header.schema)
        if (!check(value)) return `${status}: header ${name}: ${value} does not match its schema`
      }
      return undefined
    }
  }
}
