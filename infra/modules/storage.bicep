// The storage account: the queue, its poison queue and the idempotency ledger's table.
// Reached with Entra ID only: shared keys (and so connection strings holding one) are refused.

@description('Azure region.')
param location string

@description('Storage account name (3-24 lowercase letters and digits).')
param accountName string

@description('The queue; `<queueName>-poison` is created beside it.')
param queueName string

@description('The idempotency ledger table.')
param ledgerTableName string

param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Consumption-plan Container Apps have no fixed egress addresses to allow; every call needs an Entra ID token (keys are disabled) over TLS 1.2.
  // checkov:skip=CKV_AZURE_59: The public endpoint is needed for the same reason (CKV_AZURE_35); no anonymous or key-based access exists.
  // checkov:skip=CKV_AZURE_206: Zone-redundant, not geo-redundant: the apps run in one region, and GitHub can redeliver the last 3 days after a regional outage.
  // checkov:skip=CKV_AZURE_43: The name is a parameter; main.bicep passes 'st' + uniqueString(): 15 lowercase letters and digits.
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    // Zone-redundant: a queued delivery survives the loss of a zone.
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: queueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${queueName}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: ledgerTableName
}

output accountName string = account.name
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
