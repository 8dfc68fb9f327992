// The webhook receiver: external HTTPS ingress, always at least one replica (GitHub gives up on
// a delivery after 10 s, and a cold start would lose it), scaled on concurrent requests.

@description('Azure region.')
param location string

param name string
param environmentId string

@description('Image; the placeholder until `azd deploy` (or a given image) replaces it.')
param image string

param registryServer string

@description('Resource id and client id of the frontend\'s user-assigned identity.')
param identityId string
param identityClientId string

param storageAccountName string
param queueName string

@description('The webhook secret (a Container Apps secret), unless a Key Vault secret URI is given.')
@secure()
param webhookSecret string

@description('Key Vault secret URI of the webhook secret; empty to use webhookSecret.')
param webhookSecretUri string = ''

@minValue(1)
param minReplicas int = 1
param maxReplicas int = 10

@description('Concurrent requests per replica before another replica is added.')
param concurrentRequests int = 5

param tags object = {}

var port = 8080
var parameterSecret = { name: 'webhook-secret', value: webhookSecret }
var vaultSecret = { name: 'webhook-secret', keyVaultUrl: webhookSecretUri, identity: identityId }
var secret = empty(webhookSecretUri) ? parameterSecret : vaultSecret

resource app 'Microsoft.App/containerApps@2025-01-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'frontend' })
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
      ingress: {
        external: true
        targetPort: port
        transport: 'http'
        allowInsecure: false
      }
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      secrets: [
        secret
      ]
    }
    template: {
      containers: [
        {
          name: 'frontend'
          image: image
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: [
            { name: 'GITHUB_WEBHOOK_SECRET', secretRef: 'webhook-secret' }
            { name: 'PORT', value: string(port) }
            { name: 'AZURE_STORAGE_ACCOUNT_NAME', value: storageAccountName }
            { name: 'AZURE_STORAGE_QUEUE_NAME', value: queueName }
            { name: 'AZURE_CLIENT_ID', value: identityClientId }
          ]
          probes: [
            {
              type: 'Startup'
              httpGet: { path: '/health', port: port }
              periodSeconds: 2
              failureThreshold: 30
              timeoutSeconds: 2
            }
            {
              type: 'Liveness'
              httpGet: { path: '/health', port: port }
              periodSeconds: 10
              failureThreshold: 3
              timeoutSeconds: 2
            }
            {
              // 503 while the queue cannot be reached: no traffic, no restart.
              type: 'Readiness'
              httpGet: { path: '/ready', port: port }
              periodSeconds: 5
              failureThreshold: 3
              timeoutSeconds: 5
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-requests'
            http: {
              metadata: {
                concurrentRequests: string(concurrentRequests)
              }
            }
          }
        ]
      }
    }
  }
}

output fqdn string = app.properties.configuration.ingress.fqdn
