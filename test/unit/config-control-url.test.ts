/**
 * Issue 16, point 5: `config init --control mysql://host:3306/ctl_db` wrote a
 * config whose control URL named ctl_db while the control database was
 * `<prefix>control`, and provision failed with "Unknown database 'ctl_db'".
 * The path now names the control database, and a config whose URL path
 * names another database than the one it uses is refused.
 */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'

const base = { legacyUrl: 'mysql://root@127.0.0.1:3306', legacyDatabase: 'shop', legacyTable: 'orders', idCeiling: '1000', shardHosts: ['mysql://root@127.0.0.1:3307'] }

describe('issue 16 point 5: the control URL path names the control database', () => {
  it('config init --control mysql://host:3306/ctl_db makes ctl_db the control database (provision failed with Unknown database)', () => {
    const raw = buildConfig({ ...base, controlUrl: 'mysql://root@10.0.0.9:3306/ctl_db' })
    expect(raw.control).toEqual({ url: 'mysql://root@10.0.0.9:3306', database: 'ctl_db' })
    expect(parseConfig(raw).control).toEqual({ url: 'mysql://root@10.0.0.9:3306', database: 'ctl_db' })
    expect(buildConfig({ ...base, controlUrl: 'mysql://root@10.0.0.9:3306' }).control.database).toBe('sk_control')
    expect(buildConfig(base).control).toEqual({ url: 'mysql://root@127.0.0.1:3307', database: 'sk_control' })
  })

  it('a config whose URL path names another database than the one it uses is refused, naming both', () => {
    const raw = buildConfig(base)
    const bad = { ...raw, control: { url: 'mysql://root@127.0.0.1:3307/ctl_db', database: 'sk_control' } }
    expect(() => parseConfig(bad)).toThrow(/control\.url: names database "ctl_db" in its path, but control\.database is "sk_control"/)
    const badLegacy = { ...raw, legacy: { ...raw.legacy, url: 'mysql://root@127.0.0.1:3306/other' } }
    expect(() => parseConfig(badLegacy)).toThrow(/legacy\.url: names database "other"/)
    expect(() => parseConfig({ ...raw, legacy: { ...raw.legacy, url: 'mysql://root@127.0.0.1:3306/shop' } })).not.toThrow()
  })
})
