// The Container Apps environment (consumption profile), its logs to Log Analytics through a
// diagnostic setting, so no workspace key is handed to it.

@description('Azure region.')
param location string

param name string

@description('Log Analytics workspace resource id.')
param workspaceId string

param tags object = {}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    zoneRedundant: false
  }
}

resource logs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs-to-workspace'
  scope: environment
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

output id string = environment.id
output defaultDomain string = environment.properties.defaultDomain
