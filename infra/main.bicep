// github-telemetry on Azure Container Apps: every resource, identity and role it needs.
// `azd up` deploys it with infra/main.parameters.json; `az deployment group create -f
// infra/main.bicep` takes the same parameters (docs/deploy.md).

targetScope = 'resourceGroup'

@description('Name of the deployment (the azd environment); seeds every resource name.')
@minLength(1)
@maxLength(40)
param environmentName string

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('The GitHub webhook secret, kept as a Container Apps secret (unused with keyVaultName).')
@secure()
param webhookSecret string = ''

@description('An existing Key Vault in this resource group holding the webhook secret; empty to use webhookSecret.')
param keyVaultName string = ''

@description('Name of the webhook secret in keyVaultName.')
param keyVaultSecretName string = 'github-webhook-secret'

@description('An existing container registry in this resource group; empty to create one.')
param containerRegistryName string = ''

@description('Frontend image; empty for a placeholder until `azd deploy` pushes the real one.')
param frontendImage string = ''

@description('Backend image; empty for a placeholder until `azd deploy` pushes the real one.')
param backendImage string = ''

@description('The queue; `<queueName>-poison` is created beside it.')
@minLength(3)
@maxLength(56)
param queueName string = 'github-webhook-events'

@description('The idempotency ledger table.')
param ledgerTableName string = 'githubtelemetryledger'

@description('Frontend replicas kept running; at least 1, since GitHub waits 10 s at most.')
@minValue(1)
param frontendMinReplicas int = 1

@description('Most frontend replicas.')
param frontendMaxReplicas int = 10

@description('Backend replicas kept running; 0 scales to zero while the queue is empty.')
@minValue(0)
param backendMinReplicas int = 0

@description('Most backend replicas.')
param backendMaxReplicas int = 10

@description('Messages waiting per backend replica before KEDA adds one (docs/deploy.md#sizing).')
@minValue(1)
param backendQueueLength int = 2000

@description('Seconds a stopping backend replica has to export and settle its batch.')
@minValue(30)
param backendTerminationGracePeriodSeconds int = 120

@description('Deploy the scheduled recover and backfill jobs; they need GitHub credentials, a second secret.')
param enableRecoveryJobs bool = false

@description('Arguments of `python -m backend.recover`, e.g. [\'--org\', \'ORG\', \'--hook-id\', \'ID\']; empty: no recover job.')
param recoverArgs array = []

@description('Cron (UTC) of the recover job.')
param recoverSchedule string = '*/15 * * * *'

@description('Arguments of `python -m backend.backfill`, e.g. [\'--repo\', \'OWNER/NAME\', \'--since\', \'2026-01-01\']; empty: no backfill job.')
param backfillArgs array = []

@description('Cron (UTC) of the backfill job.')
param backfillSchedule string = '30 3 * * *'

@description('A GitHub token for the jobs (kept as a job secret); unused with githubAppId.')
@secure()
param githubToken string = ''

@description('A GitHub App\'s id for the jobs, with githubAppPrivateKey instead of githubToken.')
param githubAppId string = ''

@description('The GitHub App\'s private key (PEM), kept as a job secret.')
@secure()
param githubAppPrivateKey string = ''

@description('GitHub\'s REST API URL (GitHub Enterprise Server: its own).')
param githubApiUrl string = 'https://api.github.com'

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = { 'azd-env-name': environmentName, application: 'github-telemetry' }
var createRegistry = empty(containerRegistryName)
var registryName = createRegistry ? 'cr${token}' : containerRegistryName
// A public image that starts, until the first `azd deploy` replaces it.
var placeholderImage = 'mcr.microsoft.com/k8se/quickstart:latest'

resource frontendIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-frontend-${token}'
  location: location
  tags: tags
}

resource backendIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-backend-${token}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    workspaceName: 'log-${token}'
    appInsightsName: 'appi-${token}'
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    accountName: 'st${token}'
    queueName: queueName
    ledgerTableName: ledgerTableName
    tags: tags
  }
}

module newRegistry 'modules/registry.bicep' = if (createRegistry) {
  name: 'registry'
  params: {
    location: location
    name: registryName
    tags: tags
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    appInsightsId: monitoring.outputs.appInsightsId
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  dependsOn: [
    newRegistry
  ]
  params: {
    storageAccountName: storage.outputs.accountName
    queueName: queueName
    ledgerTableName: ledgerTableName
    appInsightsName: monitoring.outputs.appInsightsName
    registryName: registryName
    frontendPrincipalId: frontendIdentity.properties.principalId
    backendPrincipalId: backendIdentity.properties.principalId
    keyVaultName: keyVaultName
    keyVaultSecretName: keyVaultSecretName
  }
}

module environment 'modules/environment.bicep' = {
  name: 'environment'
  params: {
    location: location
    name: 'cae-${token}'
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module frontend 'modules/frontend.bicep' = {
  name: 'frontend'
  dependsOn: [
    roles
  ]
  params: {
    location: location
    name: 'ca-frontend-${token}'
    environmentId: environment.outputs.id
    image: empty(frontendImage) ? placeholderImage : frontendImage
    registryServer: registry.properties.loginServer
    identityId: frontendIdentity.id
    identityClientId: frontendIdentity.properties.clientId
    storageAccountName: storage.outputs.accountName
    queueName: queueName
    webhookSecret: webhookSecret
    webhookSecretUri: roles.outputs.webhookSecretUri
    minReplicas: frontendMinReplicas
    maxReplicas: frontendMaxReplicas
    tags: tags
  }
}

module backend 'modules/backend.bicep' = {
  name: 'backend'
  dependsOn: [
    roles
  ]
  params: {
    location: location
    name: 'ca-backend-${token}'
    environmentId: environment.outputs.id
    image: empty(backendImage) ? placeholderImage : backendImage
    registryServer: registry.properties.loginServer
    identityId: backendIdentity.id
    identityClientId: backendIdentity.properties.clientId
    storageAccountName: storage.outputs.accountName
    queueName: queueName
    ledgerTableName: ledgerTableName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    minReplicas: backendMinReplicas
    maxReplicas: backendMaxReplicas
    queueLength: backendQueueLength
    terminationGracePeriodSeconds: backendTerminationGracePeriodSeconds
    tags: tags
  }
}

module jobs 'modules/jobs.bicep' = if (enableRecoveryJobs) {
  name: 'jobs'
  dependsOn: [
    roles
  ]
  params: {
    location: location
    namePrefix: 'caj-${token}'
    environmentId: environment.outputs.id
    image: empty(backendImage) ? placeholderImage : backendImage
    registryServer: registry.properties.loginServer
    identityId: backendIdentity.id
    identityClientId: backendIdentity.properties.clientId
    storageAccountName: storage.outputs.accountName
    queueName: queueName
    ledgerTableName: ledgerTableName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    recoverArgs: recoverArgs
    recoverSchedule: recoverSchedule
    backfillArgs: backfillArgs
    backfillSchedule: backfillSchedule
    githubToken: githubToken
    githubAppId: githubAppId
    githubAppPrivateKey: githubAppPrivateKey
    githubApiUrl: githubApiUrl
    tags: tags
  }
}

// What azd and an operator need; no secret among them.
output AZURE_LOCATION string = location
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.properties.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registryName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.accountName
output AZURE_STORAGE_QUEUE_NAME string = queueName
output FRONTEND_CLIENT_ID string = frontendIdentity.properties.clientId
output BACKEND_CLIENT_ID string = backendIdentity.properties.clientId
output WEBHOOK_URL string = 'https://${frontend.outputs.fqdn}/webhook'
