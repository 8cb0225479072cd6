// redlock 5.0.0-beta.2 ships its types at dist/index.d.ts but its package.json
// "exports" hides them from TypeScript; this points TypeScript at them.
declare module 'redlock' {
  export * from 'redlock-types'
  export { default } from 'redlock-types'
}
