/**
 * Order events: the public face of src/events. The wire contract, the outbox
 * hook for the dual-write store, the relay, the operator status, and the
 * consumer helpers.
 */
export { EVENT_PARTITIONS, EVENT_TYPES, bindingKey, decodeEvent, encodeEvent, partitionOfUser, routingKeyOf, type OrderEvent, type OrderEventType } from './message.js'
export { createOutboxHook, eventTypeOf, OUTBOX_TABLE, type OutboxHookOptions } from './outbox.js'
export { newEventId } from './event-id.js'
export { OutboxRelay, type DrainResult, type OutboxRelayOptions, type OutboxRelayStats } from './relay.js'
export { AMQP_DEFAULTS, createConfirmingPublisher, openEventConnection, type ConfirmingPublisher, type EventConnectionOptions } from './amqp.js'
export { conventionalQueues, QUEUE_CAP, readEventsStatus, readOutboxStatus, readQueueStatus, type EventsStatus, type OutboxStatus, type QueueStatus } from './status.js'
export { readRelayLeases, RELAY_LEASE_TABLE, type RelayLeaseRow } from './relay-lease.js'
export { createOrderEventConsumer, orderEventQueueArguments, type ConsumerCounters, type HandleContext, type OrderEventConsumer, type OrderEventConsumerOptions, type OrderEventHandler, type UnvouchedEvent, type UnvouchedPolicy } from './consumer.js'
export { CONSUMER_STATE_TABLE, createMysqlConsumerState, type ConsumerStateStore, type MysqlConsumerState, type MysqlConsumerStateOptions } from './consumer-state.js'
export { createPartitionConsumers, type PartitionConsumers, type PartitionConsumersOptions } from './consumer-group.js'
