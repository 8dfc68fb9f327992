// The worker pool: no ingress, scaled by KEDA's azure-queue scaler on the queue's length, which
// it reads with the backend's own identity (`identity` and `accountName` on the rule).

@description('Azure region.')
param location string

param name string
param environmentId string

@description('Image; the placeholder until `azd deploy` (or a given image) replaces it.')
param image string

param registryServer string

@description('Resource id and client id of the backend\'s user-assigned identity.')
param identityId string
param identityClientId string

param storageAccountName string
param queueName string
param ledgerTableName string

@description('Application Insights connection string (where to send; no key is usable with local auth off).')
param appInsightsConnectionString string

@description('0 lets the backend scale to zero when the queue is empty.')
@minValue(0)
param minReplicas int = 0
param maxReplicas int = 10

@description('Messages waiting per replica before KEDA adds one.')
param queueLength int = 2000

@description('Worker processes per replica.')
param workerProcesses int = 2

@description('How long a received message stays hidden, in seconds.')
param visibilityTimeoutSeconds int = 300

@description('Seconds between SIGTERM and SIGKILL: the batch in hand is exported and settled.')
param terminationGracePeriodSeconds int = 120

param tags object = {}

resource app 'Microsoft.App/containerApps@2025-01-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'backend' })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
    }
    template: {
      terminationGracePeriodSeconds: terminationGracePeriodSeconds
      containers: [
        {
          name: 'backend'
          image: image
          resources: {
            cpu: json('1.0')
            memory: '2Gi'
          }
          env: [
            { name: 'AZURE_STORAGE_ACCOUNT_NAME', value: storageAccountName }
            { name: 'AZURE_STORAGE_QUEUE_NAME', value: queueName }
            { name: 'LEDGER_TABLE_NAME', value: ledgerTableName }
            { name: 'AZURE_CLIENT_ID', value: identityClientId }
            { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
            {
              name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
              value: 'Authorization=AAD;ClientId=${identityClientId}'
            }
            { name: 'WORKER_PROCESSES', value: string(workerProcesses) }
            { name: 'VISIBILITY_TIMEOUT_SECONDS', value: string(visibilityTimeoutSeconds) }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'queue-length'
            azureQueue: {
              accountName: storageAccountName
              queueName: queueName
              queueLength: queueLength
              identity: identityId
            }
          }
        ]
      }
    }
  }
}

output name string = app.name
