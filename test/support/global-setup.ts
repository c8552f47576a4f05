/**
 * vitest global setup: resolves MySQL and Redis once for the whole run and
 * hands their URLs to every test file through `inject()`.
 */
import type { TestProject } from 'vitest/node'
import { resolveServices } from './services.js'

declare module 'vitest' {
  export interface ProvidedContext {
    mysqlUrl: string
    redisUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const s = await resolveServices()
  process.stderr.write(`[shardkit tests] mysql from ${s.sources.mysql}, redis from ${s.sources.redis}\n`)
  project.provide('mysqlUrl', s.mysqlUrl)
  project.provide('redisUrl', s.redisUrl)
  return () => s.stop()
}
