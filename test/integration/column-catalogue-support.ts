/**
 * The column-type catalogue of issue 16: a legacy table holding each type a
 * real order table may have, values that stress each one, the SQL that
 * prints every stored byte of a column (written here, not taken from
 * shardkit, so the check does not trust the code it checks), and a one-bit
 * change of each value.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise'
import mysql from 'mysql2/promise'
import { quoteIdent } from '../../src/runtime/mysql.js'

/** The catalogue table's DDL (BIGINT UNSIGNED keys, both dimensions indexed). */
export function catalogueDDL(qualifiedTable: string): string {
  return `CREATE TABLE ${qualifiedTable} (
  order_id BIGINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  merchant_id BIGINT UNSIGNED NOT NULL,
  status VARCHAR(16) NOT NULL,
  version INT UNSIGNED NOT NULL DEFAULT 1,
  c_uuid BINARY(16) NOT NULL,
  c_token VARBINARY(16) NULL,
  c_blob BLOB NULL,
  c_bit BIT(10) NULL,
  c_geom GEOMETRY NULL,
  c_float FLOAT NULL,
  c_double DOUBLE NULL,
  c_dec DECIMAL(65,30) NULL,
  c_json JSON NULL,
  c_dt DATETIME(6) NULL,
  c_ts TIMESTAMP(6) NULL DEFAULT NULL,
  c_enum ENUM('a','b','c','d') NULL,
  c_set SET('x','y','z') NULL,
  c_year YEAR NULL,
  c_text VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
  c_bin_text VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  PRIMARY KEY (order_id),
  KEY idx_user (user_id),
  KEY idx_merchant (merchant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`
}

/** The catalogue's value columns (what each test walks). */
export const VALUE_COLUMNS = ['c_uuid', 'c_token', 'c_blob', 'c_bit', 'c_geom', 'c_float', 'c_double', 'c_dec', 'c_json', 'c_dt', 'c_ts', 'c_enum', 'c_set', 'c_year', 'c_text', 'c_bin_text'] as const
export type ValueColumn = (typeof VALUE_COLUMNS)[number]

/** A GEOMETRY value in the server's own format: SRID (LE) then WKB of a point. */
export function pointBytes(srid: number, x: number, y: number): Buffer {
  const b = Buffer.alloc(25)
  b.writeUInt32LE(srid, 0)
  b.writeUInt8(1, 4) // little-endian WKB
  b.writeUInt32LE(1, 5) // POINT
  b.writeDoubleLE(x, 9)
  b.writeDoubleLE(y, 17)
  return b
}

const FLOATS = [Math.fround(1.0000001192), Math.fround(3.4028234e38), Math.fround(1.401298464324817e-45)]
const DOUBLES = [0.1 + 0.2, 1.7976931348623157e308, 5e-324]

/** The values of row `i` (i from 0): bytes with 0x00 and invalid UTF-8, extreme floats, 65-digit decimals, odd JSON, 4-byte UTF-8. */
export function catalogueValues(i: number): Record<ValueColumn, string | number | Buffer> {
  return {
    c_uuid: Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, i, 0x80, 0, 0, 0x7f, 0xed, 0xa0, 0x80, 0xf8, 0x88, 0x00]),
    c_token: Buffer.from([0x01, 0xff, 0x7b, 0x22, 0x00, 0xfe, i]),
    c_blob: Buffer.concat([Buffer.from([0x00, 0xc3, 0x28, 0xff, 0x23]), Buffer.alloc(300, 0x23 + i)]),
    c_bit: Buffer.from([0x02, 0x23 ^ i]),
    c_geom: pointBytes(4326, 121.4737 + i, 31.2304),
    c_float: FLOATS[i % 3]!,
    c_double: DOUBLES[i % 3]!,
    c_dec: `-1234567890123456789012345678901234${i % 10}.123456789012345678901234567891`,
    c_json: `{"b": 1,  "a":[1,2], "u":"\\u00e9", "i": ${i}}`,
    c_dt: `2024-03-31 02:30:00.12345${i % 10}`,
    c_ts: `2024-03-10 02:30:00.65432${i % 10}`,
    c_enum: 'b',
    c_set: 'x,z',
    c_year: 2155 - (i % 2),
    c_text: `𝄞😀中 é${i}`,
    c_bin_text: `Ab😀${i}`,
  }
}

/**
 * The SQL that prints every stored byte of a column: HEX() of the value,
 * except where HEX() would convert it: a FLOAT widened to its exact double's
 * digits, a DOUBLE's round-trip digits, a TIMESTAMP's UTC text (the
 * connection's zone is +00:00) and the instant.
 */
export function bytesSql(column: string): string {
  const q = quoteIdent(column)
  if (column === 'c_float') return `CAST(CAST(${q} AS DOUBLE) AS CHAR)`
  if (column === 'c_double') return `CAST(${q} AS CHAR)`
  if (column === 'c_ts') return `CONCAT(HEX(CAST(${q} AS CHAR)), '@', UNIX_TIMESTAMP(${q}))`
  return `HEX(${q})`
}

/** A plain connection (not a shardkit pool) whose session is UTC, for the test's own reads and faults. */
export async function utcConnection(url: string): Promise<Connection> {
  const u = new URL(url)
  const c = await mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username || 'root'), password: decodeURIComponent(u.password), supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, jsonStrings: true })
  await c.query("SET time_zone = '+00:00'")
  return c
}

/** Every stored byte of the rows `ids` of a table, by id, per column (via {@link bytesSql}). */
export async function storedBytes(c: Connection, qualifiedTable: string, columns: readonly string[], ids: readonly string[]): Promise<Map<string, Record<string, string | null>>> {
  const out = new Map<string, Record<string, string | null>>()
  if (ids.length === 0) return out
  const [rows] = await c.query<RowDataPacket[]>(`SELECT order_id, ${columns.map((col) => `${bytesSql(col)} AS ${quoteIdent(col)}`).join(', ')} FROM ${qualifiedTable} WHERE order_id IN (?)`, [ids])
  for (const r of rows) {
    const o: Record<string, string | null> = {}
    for (const col of columns) o[col] = r[col] === null ? null : String(r[col])
    out.set(String(r.order_id), o)
  }
  return out
}

function flipLastDigit(s: string): string {
  const i = s.search(/\d(?!.*\d)/)
  return s.slice(0, i) + String(Number(s[i]) ^ 1) + s.slice(i + 1)
}

/**
 * A value one bit away from `v` (as the column stores it): the lowest bit of
 * the last byte, of a float's or double's mantissa, of the last digit of a
 * decimal or time, an ENUM/SET index or a YEAR; a JSON key letter; a bit in
 * a 4-byte UTF-8 character (😀 becomes 😁).
 */
export function oneBitAway(column: ValueColumn, v: unknown): string | number | Buffer {
  switch (column) {
    case 'c_uuid':
    case 'c_token':
    case 'c_blob':
    case 'c_bit':
    case 'c_geom': {
      const b = Buffer.from(v as Buffer)
      b[b.length - 1] = b[b.length - 1]! ^ 1
      return b
    }
    case 'c_float': {
      const dv = new DataView(new ArrayBuffer(4))
      dv.setFloat32(0, v as number)
      dv.setUint32(0, dv.getUint32(0) ^ 1)
      return dv.getFloat32(0)
    }
    case 'c_double': {
      const dv = new DataView(new ArrayBuffer(8))
      dv.setFloat64(0, v as number)
      dv.setUint8(7, dv.getUint8(7) ^ 1)
      return dv.getFloat64(0)
    }
    case 'c_dec':
    case 'c_dt':
    case 'c_ts':
      return flipLastDigit(String(v))
    case 'c_json':
      return String(v).replace('"a"', '"c"') // 'a' 0x61 -> 'c' 0x63
    case 'c_enum':
      return 'c' // index 2 -> 3
    case 'c_set':
      return 'z' // bits 101 -> 100
    case 'c_year':
      return (v as number) ^ 1
    case 'c_text':
    case 'c_bin_text': {
      const b = Buffer.from(String(v), 'utf8')
      const at = b.indexOf(Buffer.from('😀', 'utf8'))
      b[at + 3] = b[at + 3]! ^ 1
      return b.toString('utf8')
    }
  }
}
