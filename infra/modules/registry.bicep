// A private container registry; the apps pull from it with their identities (AcrPull), never
// with the admin user.

@description('Azure region.')
param location string

@description('Registry name (5-50 letters and digits).')
param name string

param tags object = {}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139: Consumption-plan Container Apps pull over the public endpoint; every pull needs an identity with AcrPull (no admin user, no anonymous pull).
  // checkov:skip=CKV_AZURE_163: Image scanning is Microsoft Defender for Containers, enabled per subscription, not per registry.
  // checkov:skip=CKV_AZURE_166: Quarantine needs the Premium tier (about 10 times Basic's price) for two images built from this repository.
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
