// Least privilege: each app's identity gets only the data roles it uses, on the narrowest scope.
// Names are guid(scope, principal, role), so a redeployment finds the same assignment.
// https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles

@description('Storage account holding the queues and the ledger table.')
param storageAccountName string

param queueName string
param ledgerTableName string

@description('Application Insights component the backend sends to.')
param appInsightsName string

@description('Container registry the apps pull from (in this resource group).')
param registryName string

@description('Principal (object) ids of the apps\' user-assigned identities.')
param frontendPrincipalId string
param backendPrincipalId string

@description('Key Vault holding the webhook secret, or empty when the secret is a parameter.')
param keyVaultName string = ''
param keyVaultSecretName string = ''

var roles = {
  queueMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: queueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: '${queueName}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: ledgerTableName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = if (!empty(keyVaultName)) {
  name: keyVaultName
}

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (!empty(keyVaultName)) {
  parent: vault
  name: keyVaultSecretName
}

// The frontend only sends, and only to the main queue.
resource frontendQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, frontendPrincipalId, roles.queueMessageSender)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueMessageSender)
    principalId: frontendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The backend receives, deletes, updates (visibility) and sends (poison): only Contributor has
// all four. The scaler reads the queue length with the same role and identity.
resource backendQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, backendPrincipalId, roles.queueDataContributor)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataContributor)
    principalId: backendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource backendPoisonQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poisonQueue.id, backendPrincipalId, roles.queueDataContributor)
  scope: poisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.queueDataContributor)
    principalId: backendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource backendLedger 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(ledgerTable.id, backendPrincipalId, roles.tableDataContributor)
  scope: ledgerTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.tableDataContributor)
    principalId: backendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Entra ID ingestion: the role Application Insights asks of a sender when local auth is off.
resource backendTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, backendPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: backendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource frontendPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, frontendPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: frontendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource backendPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, backendPrincipalId, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: backendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// With a vault, the frontend reads that one secret and nothing else in it.
resource frontendSecret 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(keyVaultName)) {
  name: guid(webhookSecret.id, frontendPrincipalId, roles.keyVaultSecretsUser)
  scope: webhookSecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: frontendPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output webhookSecretUri string = empty(keyVaultName) ? '' : webhookSecret.properties.secretUri
