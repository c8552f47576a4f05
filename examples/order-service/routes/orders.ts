/**
 * The order routes: create, get by id, list by user and by merchant (newest
 * first, cursor pages), and status changes along the lifecycle.
 */
import type { FastifyInstance } from 'fastify'
import type { DualWriteStore } from '../../../src/index.js'
import { isShardkitError } from '../../../src/index.js'
import { HttpError, withRetry, type RetryPolicy } from '../errors.js'
import { checkTransition } from '../lifecycle.js'
import { rowForCreate, toOrderJson } from '../order-json.js'
import { createOrderBody, listQuery, MAX_PAGE, merchantParams, orderIdParams, statusBody, userParams, type CreateOrderBody, type StatusBody } from '../schemas.js'

/** The store calls the service uses (a `DualWriteStore` satisfies it). */
export type OrderStore = Pick<DualWriteStore, 'insert' | 'update' | 'get' | 'listByUser' | 'listByMerchant'>

/** Where new order ids come from (shardkit's id generator satisfies it). */
export interface IdSource {
  /** A new order id (decimal string) carrying the shard of `userId`. */
  next(userId: string): string | Promise<string>
}

export interface OrderRoutesOptions {
  readonly store: OrderStore
  readonly ids: IdSource
  readonly retry: RetryPolicy
  readonly now: () => number
}

function pageOpts(q: { limit?: string; cursor?: string }): { limit?: number; cursor?: string } {
  const limit = q.limit === undefined ? undefined : Number(q.limit)
  if (limit !== undefined && limit > MAX_PAGE) throw new HttpError(400, 'VALIDATION', `querystring field limit must be at most ${MAX_PAGE}`, 'limit')
  return { ...(limit !== undefined ? { limit } : {}), ...(q.cursor !== undefined ? { cursor: q.cursor } : {}) }
}

/** Registers the order routes on `app`. */
export async function orderRoutes(app: FastifyInstance, o: OrderRoutesOptions): Promise<void> {
  const { store, ids, retry, now } = o

  app.post<{ Body: CreateOrderBody }>('/orders', { schema: { body: createOrderBody } }, async (req, reply) => {
    const orderId = await ids.next(req.body.user_id)
    const row = rowForCreate(orderId, req.body, now())
    await withRetry(retry, async (attempt) => {
      try {
        await store.insert(row, { event: { type: 'created' } })
      } catch (err) {
        // A retry after an ambiguous failure may find its own earlier commit: the id is ours alone.
        if (attempt > 0 && isShardkitError(err, 'ORDER_EXISTS')) return
        throw err
      }
    })
    req.log.debug({ orderId }, 'order created')
    return reply.code(201).send(toOrderJson(row))
  })

  app.get<{ Params: { orderId: string } }>('/orders/:orderId', { schema: { params: orderIdParams } }, async (req) => {
    const row = await withRetry(retry, () => store.get(req.params.orderId))
    if (!row) throw new HttpError(404, 'ORDER_NOT_FOUND', `order ${req.params.orderId} does not exist`)
    return toOrderJson(row)
  })

  app.get<{ Params: { userId: string }; Querystring: { limit?: string; cursor?: string } }>('/users/:userId/orders', { schema: { params: userParams, querystring: listQuery } }, async (req) => {
    const page = await withRetry(retry, () => store.listByUser(req.params.userId, pageOpts(req.query)))
    return { orders: page.rows.map(toOrderJson), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) }
  })

  app.get<{ Params: { merchantId: string }; Querystring: { limit?: string; cursor?: string } }>('/merchants/:merchantId/orders', { schema: { params: merchantParams, querystring: listQuery } }, async (req) => {
    const page = await withRetry(retry, () => store.listByMerchant(req.params.merchantId, pageOpts(req.query)))
    return { orders: page.rows.map(toOrderJson), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) }
  })

  const changeStatus = async (orderId: string, body: StatusBody) =>
    withRetry(retry, async () => {
      const cur = await store.get(orderId)
      if (!cur) throw new HttpError(404, 'ORDER_NOT_FOUND', `order ${orderId} does not exist`)
      const version = Number(cur.version)
      if (body.version !== undefined && body.version !== version) {
        throw new HttpError(409, 'VERSION_CONFLICT', `order ${orderId} is at version ${version}, not ${body.version}; read it again`)
      }
      const check = checkTransition(String(cur.status), body.status)
      if (!check.ok) throw new HttpError(409, 'ILLEGAL_TRANSITION', check.reason)
      try {
        return await store.update(orderId, { status: body.status }, { event: { type: body.status }, expectedVersion: version })
      } catch (err) {
        // Another writer moved it between our read and our write: report it as a conflict, never overwrite.
        if (isShardkitError(err, 'VERSION_CONFLICT')) throw new HttpError(409, 'VERSION_CONFLICT', `order ${orderId} changed while this request ran; read it again`)
        if (isShardkitError(err, 'ORDER_NOT_FOUND')) throw new HttpError(404, 'ORDER_NOT_FOUND', `order ${orderId} does not exist`)
        throw err
      }
    })

  for (const method of ['POST', 'PUT'] as const) {
    app.route<{ Params: { orderId: string }; Body: StatusBody }>({
      method,
      url: '/orders/:orderId/status',
      schema: { params: orderIdParams, body: statusBody },
      handler: async (req) => toOrderJson(await changeStatus(req.params.orderId, req.body)),
    })
  }
}
