"""The console's own SCIM 2.0 service provider, for identity providers (Okta, Entra ID)."""
