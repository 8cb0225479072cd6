/**
 * fast-check arbitraries of values a JSON schema (as an OpenAPI 3.0 document
 * publishes it) accepts: the subset the document uses — objects, arrays,
 * strings (pattern, length, enum, date-time), integers, numbers, booleans and
 * $ref. Named properties can be drawn from given arbitraries instead (ids of
 * things that exist), so valid requests reach past "not found".
 */
import fc from 'fast-check'

export type JsonSchema = Record<string, any>

export interface ArbitraryOptions {
  /** a `$ref` of the document, resolved */
  resolve: (ref: string) => JsonSchema
  /** values for properties of these names, whatever their schema says */
  named?: Record<string, fc.Arbitrary<unknown>>
}

/** Generated strings and arrays stay short: the answers matter, not the sizes. */
const MAX_GENERATED = 24

function stringOf (schema: JsonSchema): fc.Arbitrary<string> {
  const minLength: number = schema.minLength ?? 0
  const maxLength: number = schema.maxLength ?? Infinity
  if (schema.format === 'date-time') return fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }).map(d => d.toISOString())
  if (typeof schema.pattern === 'string') {
    return fc.stringMatching(new RegExp(schema.pattern)).filter(s => s.length >= minLength && s.length <= maxLength)
  }
  return fc.string({ minLength, maxLength: Math.min(maxLength, Math.max(minLength, MAX_GENERATED)) })
}

export function arbitraryOf (schema: JsonSchema, options: ArbitraryOptions): fc.Arbitrary<unknown> {
  if (typeof schema.$ref === 'string') return arbitraryOf(options.resolve(schema.$ref), options)
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]))
  switch (schema.type) {
    case 'object': {
      const properties: Record<string, JsonSchema> = schema.properties ?? {}
      const model = Object.fromEntries(Object.entries(properties).map(([name, property]) =>
        [name, options.named?.[name] ?? arbitraryOf(property, options)]))
      return fc.record(model, { requiredKeys: schema.required ?? [] })
    }
    case 'array':
      return fc.array(arbitraryOf(schema.items, options), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? Infinity, Math.max(schema.minItems ?? 0, 4))
      })
    case 'string':
      return stringOf(schema)
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1_000_000, max: schema.maximum ?? 1_000_000 })
    case 'number': {
      const min: number = schema.minimum ?? -1_000_000
      const max: number = schema.maximum ?? 1_000_000
      return fc.oneof(fc.integer({ min: Math.ceil(min), max: Math.floor(max) }), fc.double({ min, max, noNaN: true, noDefaultInfinity: true }))
    }
    case 'boolean':
      return fc.boolean()
    default:
      throw new Error(`no arbitrary for schema ${JSON.stringify(schema)}`)
  }
}
