export { provision, type ProvisionReport, type ProvisionItem, type ProvisionConflict, type ProvisionOptions, type ProvisionTarget } from './provision.js'
export { shardTableDDL, needsMerchantIndex, shapeDifferences, MERCHANT_INDEX, type TableShape, type ColumnShape, type IndexShape } from './shard-ddl.js'
