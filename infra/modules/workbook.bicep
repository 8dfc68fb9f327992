// The Azure Monitor workbook (infra/workbook, built from the checked docs/queries/*.kql files),
// over this deployment's Application Insights.
// https://learn.microsoft.com/en-us/azure/templates/microsoft.insights/workbooks

@description('Azure region.')
param location string

@description('Resource id of the Application Insights component the workbook reads.')
param appInsightsId string

@description('Title shown in the portal\'s workbook gallery.')
param displayName string = 'GitHub Actions telemetry'

param tags object = {}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A deterministic name: a redeployment updates this workbook instead of adding another.
  name: guid(resourceGroup().id, 'github-telemetry-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    version: 'Notebook/1.0'
    serializedData: loadTextContent('../workbook/github-telemetry.workbook.json')
  }
}

output id string = workbook.id
