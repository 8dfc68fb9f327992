// Scheduled Container Apps jobs for `python -m backend.recover` (redeliver what GitHub failed
// to deliver) and `python -m backend.backfill` (enqueue past runs), from the backend image and
// on the backend's identity: the ledger table and the queue are all they touch in Azure.
// GitHub credentials are this deployment's second secret (docs/deploy.md), kept as job secrets.
// https://learn.microsoft.com/en-us/azure/container-apps/jobs

@description('Azure region.')
param location string

@description('Job names: `<namePrefix>-recover` and `<namePrefix>-backfill` (32 characters at most).')
param namePrefix string

param environmentId string

@description('The backend image (the jobs run its other entry points).')
param image string

param registryServer string

@description('Resource id and client id of the backend\'s user-assigned identity.')
param identityId string
param identityClientId string

param storageAccountName string
param queueName string
param ledgerTableName string

@description('Application Insights connection string (the backend\'s settings, complete).')
param appInsightsConnectionString string

@description('Arguments of `python -m backend.recover`, e.g. [\'--org\', \'ORG\', \'--hook-id\', \'ID\']; empty: no recover job.')
param recoverArgs array = []

@description('Cron (UTC) of the recover job: every 15 minutes, well inside GitHub\'s 3 days.')
param recoverSchedule string = '*/15 * * * *'

@description('Seconds a recover execution may run; below the schedule\'s interval, so two never overlap.')
@minValue(60)
param recoverTimeoutSeconds int = 840

@description('Arguments of `python -m backend.backfill`, e.g. [\'--repo\', \'OWNER/NAME\', \'--since\', \'2026-01-01\']; empty: no backfill job.')
param backfillArgs array = []

@description('Cron (UTC) of the backfill job: daily; finished days are skipped.')
param backfillSchedule string = '30 3 * * *'

@description('Seconds a backfill execution may run (it waits for rate-limit resets); below a day.')
@minValue(60)
param backfillTimeoutSeconds int = 82800

@description('A GitHub token (PAT or installation token); unused when githubAppId is set.')
@secure()
param githubToken string = ''

@description('A GitHub App\'s id; with githubAppPrivateKey instead of githubToken.')
param githubAppId string = ''

@description('The GitHub App\'s private key (PEM), mounted as a file for the jobs.')
@secure()
param githubAppPrivateKey string = ''

@description('GitHub\'s REST API (GitHub Enterprise Server: its API URL).')
param githubApiUrl string = 'https://api.github.com'

param tags object = {}

var useApp = !empty(githubAppId)
var keyDirectory = '/run/secrets/github'
var keyFile = 'app-private-key.pem'
var tokenSecrets = [{ name: 'github-token', value: githubToken }]
var appSecrets = [{ name: 'github-app-private-key', value: githubAppPrivateKey }]
var secrets = useApp ? appSecrets : tokenSecrets
var tokenEnv = [{ name: 'GITHUB_TOKEN', secretRef: 'github-token' }]
var appEnv = [
  { name: 'GITHUB_APP_ID', value: githubAppId }
  { name: 'GITHUB_APP_PRIVATE_KEY_FILE', value: '${keyDirectory}/${keyFile}' }
]
// The App's key as a file (GITHUB_APP_PRIVATE_KEY_FILE), from a secret volume.
var appVolumes = [
  {
    name: 'github'
    storageType: 'Secret'
    secrets: [{ secretRef: 'github-app-private-key', path: keyFile }]
  }
]
var appMounts = [{ volumeName: 'github', mountPath: keyDirectory }]
var backendEnv = [
  { name: 'AZURE_STORAGE_ACCOUNT_NAME', value: storageAccountName }
  { name: 'AZURE_STORAGE_QUEUE_NAME', value: queueName }
  { name: 'LEDGER_TABLE_NAME', value: ledgerTableName }
  { name: 'AZURE_CLIENT_ID', value: identityClientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD;ClientId=${identityClientId}'
  }
  { name: 'GITHUB_API_URL', value: githubApiUrl }
]
var env = concat(backendEnv, useApp ? appEnv : tokenEnv)
var jobIdentity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${identityId}': {}
  }
}
var registries = [
  {
    server: registryServer
    identity: identityId
  }
]
var jobResources = {
  cpu: json('0.5')
  memory: '1Gi'
}

resource recoverJob 'Microsoft.App/jobs@2025-01-01' = if (!empty(recoverArgs)) {
  name: '${namePrefix}-recover'
  location: location
  tags: tags
  identity: jobIdentity
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Schedule'
      // One execution at a time: the checkpoints assume a single writer.
      scheduleTriggerConfig: {
        cronExpression: recoverSchedule
        parallelism: 1
        replicaCompletionCount: 1
      }
      replicaTimeout: recoverTimeoutSeconds
      // A failed run is simply the next scheduled one: the checkpoint only advances on success.
      replicaRetryLimit: 0
      registries: registries
      secrets: secrets
    }
    template: {
      containers: [
        {
          name: 'recover'
          image: image
          command: ['python', '-m', 'backend.recover']
          args: recoverArgs
          env: env
          resources: jobResources
          volumeMounts: useApp ? appMounts : []
        }
      ]
      volumes: useApp ? appVolumes : []
    }
  }
}

resource backfillJob 'Microsoft.App/jobs@2025-01-01' = if (!empty(backfillArgs)) {
  name: '${namePrefix}-backfill'
  location: location
  tags: tags
  identity: jobIdentity
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Schedule'
      scheduleTriggerConfig: {
        cronExpression: backfillSchedule
        parallelism: 1
        replicaCompletionCount: 1
      }
      replicaTimeout: backfillTimeoutSeconds
      replicaRetryLimit: 0
      registries: registries
      secrets: secrets
    }
    template: {
      containers: [
        {
          name: 'backfill'
          image: image
          command: ['python', '-m', 'backend.backfill']
          args: backfillArgs
          env: env
          resources: jobResources
          volumeMounts: useApp ? appMounts : []
        }
      ]
      volumes: useApp ? appVolumes : []
    }
  }
}
