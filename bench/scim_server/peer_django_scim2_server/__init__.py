"""A minimal project serving django-scim2-server, set up as its documentation says."""
