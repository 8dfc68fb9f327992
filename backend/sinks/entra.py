"""Entra ID tokens for Application Insights ingestion: the audience, the scope, the credential.

With `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` set, each track request carries
`Authorization: Bearer <token>` for Azure Monitor; the resource then needs no instrumentation
key to be secret, and its local (key-based) ingestion can be off.
https://learn.microsoft.com/en-us/azure/azure-monitor/app/azure-ad-authentication
The sink posts with requests (it must read every answer itself), so its tokens come from
`common.tokens.BearerToken`, cached and refreshed before expiry.
"""

from __future__ import annotations

from backend.settings import EntraAuthentication
from common.tokens import BearerToken, TokenCredential

# Azure Monitor's audience with the `/.default` suffix; the double slash is how the Azure
# Monitor SDKs spell it, and the token's `aud` is `https://monitor.azure.com/`.
MONITOR_AUDIENCE = "https://monitor.azure.com/"
# What a failed credential's error says the token was for.
PURPOSE = "Application Insights"


def scope_for(audience: str | None) -> str:
    """The scope to ask for: `<audience>/.default`, Azure Monitor's unless another is given."""
    return (audience or MONITOR_AUDIENCE).rstrip("/") + "//.default"


def monitor_token(credential: TokenCredential, audience: str | None = None) -> BearerToken:
    """Cached `Authorization` values for Azure Monitor ingestion (`audience`: another cloud's)."""
    return BearerToken(credential, scope_for(audience), PURPOSE)


def credential_for(authentication: EntraAuthentication) -> TokenCredential:
    """The identity's credential: the user-assigned one named by ClientId, else the default."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if authentication.client_id:
        return ManagedIdentityCredential(client_id=authentication.client_id)
    return DefaultAzureCredential()
