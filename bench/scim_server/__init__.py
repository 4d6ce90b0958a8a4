"""The console's SCIM server against django-scim2 and django-scim2-server, in one run."""
